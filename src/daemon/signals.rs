//! Signals become inputs of the loop: SIGTERM/SIGINT stop, SIGHUP reloads.

use std::sync::mpsc::SyncSender;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::input::Input;
use crate::vocabulary::Event;

pub fn spawn(events: SyncSender<Input>) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("fip-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let input = if signal == SIGHUP {
                    Input::Reload
                } else {
                    Input::Machine(Event::Shutdown)
                };
                if events.send(input).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}
