//! `floatip handover`: asks the running daemon to hand its address over now.

use super::HandoverArgs;
use crate::status::HandoverReply;

pub fn handover(args: &HandoverArgs) -> anyhow::Result<()> {
    let socket = super::status::socket_of(&args.socket, &args.config.config);
    match crate::status::hand_over(&socket, args.to)? {
        HandoverReply::HandedTo(node) => {
            println!("handing the address over to {node}; this node stays BACKUP");
            Ok(())
        }
        HandoverReply::Refused(why) => anyhow::bail!("handover refused: {why}"),
    }
}
