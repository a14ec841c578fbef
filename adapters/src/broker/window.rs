//! Pipelined publishing: many messages in flight on one confirm-mode channel, and each
//! message's fate known without doubt.
//!
//! The broker confirms publishes as they are written (an ack may cover several at once),
//! and a message that no queue takes (`mandatory`) comes back as a `basic.return` *before*
//! its ack. lapin hands a returned message to whichever confirm completes next on that
//! channel, which, with several in flight and cumulative acks, may be another message's.
//! So a returned message is matched by its message id, and no message of a channel's
//! *window* (the publishes between two moments with nothing in flight on it) is called
//! delivered before every confirm of that window is in: by then every return of the
//! window has arrived (each precedes its own message's ack) and been handed to one of
//! the window's confirms.
//!
//! A window takes publishes until its first confirm arrives or it is full, then settles;
//! new publishes go to the next window, on another channel. On an idle hub a window is one
//! message, as before; under load it holds what arrives during one of the broker's disk
//! writes. A window with an error, a timeout or a lost channel settles as broken: none of
//! its messages counts as delivered, each is sent again with the same message id (the
//! procedure de-duplicates), and its channel is not used again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lapin::{Channel, Confirmation};
use tokio::sync::watch;

/// Publishes in one window at most: bounds the work a broken window sends again.
pub(crate) const WINDOW: usize = 256;

/// One confirm-mode channel's current run of publishes.
pub(crate) struct Window {
    pub channel: Channel,
    /// The connection's generation the channel belongs to.
    pub generation: u64,
    state: Mutex<State>,
    settled: watch::Sender<Option<Verdict>>,
}

#[derive(Default)]
struct State {
    /// Whether new publishes may still join.
    open: bool,
    /// Publishes that joined (reserved a place; some may not have been sent yet).
    joined: usize,
    /// Of them, those whose confirm (or failure) is in.
    reported: usize,
    /// Message ids the broker returned, whichever confirm carried them, with its reply
    /// (`312 NO_ROUTE`).
    returned: HashMap<String, String>,
    /// Why the window cannot vouch for its acks (an error, a timeout, a lost channel).
    broken: Option<String>,
}

/// What a settled window says about its acknowledged messages.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Every confirm is in: an acknowledged message was delivered unless it is among
    /// the returned ones.
    Settled {
        returned: Arc<HashMap<String, String>>,
    },
    /// The window cannot tell: none of its messages counts as delivered.
    Broken(String),
}

/// How one publish ended on its own, before its window settled.
#[derive(Debug)]
pub(crate) enum Report {
    /// Boxed: a returned message makes a confirmation large.
    Confirmed(Box<Confirmation>),
    /// Publishing or waiting for the confirm failed, or the confirm did not come in time.
    Failed(String),
}

/// What the last reporter must do with the channel once its window settled.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Others of the window are still out.
    Pending,
    /// Settled cleanly: the channel may take a new window.
    Reuse,
    /// Settled as broken: close the channel.
    Discard,
}

impl Window {
    pub fn new(channel: Channel, generation: u64) -> Arc<Self> {
        Arc::new(Self {
            channel,
            generation,
            state: Mutex::new(State {
                open: true,
                ..State::default()
            }),
            settled: watch::channel(None).0,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a place for one more publish, if the window is still open and not full.
    pub fn join(&self) -> bool {
        let mut state = self.state();
        if !state.open || state.joined >= WINDOW {
            return false;
        }
        state.joined += 1;
        if state.joined >= WINDOW {
            state.open = false;
        }
        true
    }

    /// Notes how one joined publish ended. The window closes with its first report (a
    /// confirm is in: the broker has written what came before) and settles with its
    /// last.
    pub fn report(&self, report: &Report) -> After {
        let mut state = self.state();
        state.reported += 1;
        state.open = false;
        match report {
            Report::Confirmed(confirmation) => match &**confirmation {
                Confirmation::Ack(returned) | Confirmation::Nack(returned) => {
                    if let Some(returned) = returned {
                        match returned.properties.message_id() {
                            Some(id) => {
                                let reply =
                                    format!("{} {}", returned.reply_code, returned.reply_text);
                                state.returned.insert(id.to_string(), reply);
                            }
                            // Not one of ours: nothing in this window can be vouched for.
                            None => {
                                state.broken = Some(
                                    "the broker returned a message without a message id".into(),
                                )
                            }
                        }
                    }
                }
                Confirmation::NotRequested => {
                    state.broken = Some("channel not in confirm mode".into());
                }
            },
            Report::Failed(reason) => {
                state.broken.get_or_insert_with(|| reason.clone());
            }
        }
        if state.reported < state.joined {
            return After::Pending;
        }
        let (verdict, after) = match state.broken.take() {
            Some(reason) => (Verdict::Broken(reason), After::Discard),
            None => (
                Verdict::Settled {
                    returned: Arc::new(std::mem::take(&mut state.returned)),
                },
                After::Reuse,
            ),
        };
        self.settled.send_replace(Some(verdict));
        after
    }

    /// Waits until every publish of the window has reported.
    pub async fn settled(&self) -> Verdict {
        let mut settled = self.settled.subscribe();
        match settled.wait_for(Option::is_some).await {
            Ok(verdict) => verdict
                .clone()
                .unwrap_or_else(|| Verdict::Broken("window not settled".into())),
            // The window is gone (cannot happen while we hold it).
            Err(_) => Verdict::Broken("window dropped before it settled".into()),
        }
    }
}

/// A message's outcome from its own report and its window's verdict.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    Delivered,
    /// Returned by the broker, with its reply (`312 NO_ROUTE`).
    Returned(String),
    Nacked,
    /// Its window cannot vouch for it, or its own publish failed.
    Unsure(String),
}

pub(crate) fn fate(message_id: &str, own: &Report, verdict: &Verdict) -> Fate {
    match (own, verdict) {
        (Report::Failed(reason), _) => Fate::Unsure(reason.clone()),
        (Report::Confirmed(confirmation), verdict) => match (&**confirmation, verdict) {
            (Confirmation::Nack(_), _) => Fate::Nacked,
            (_, Verdict::Broken(reason)) => Fate::Unsure(reason.clone()),
            (Confirmation::NotRequested, _) => Fate::Unsure("channel not in confirm mode".into()),
            (Confirmation::Ack(_), Verdict::Settled { returned }) => match returned.get(message_id)
            {
                Some(reply) => Fate::Returned(reply.clone()),
                None => Fate::Delivered,
            },
        },
    }
}
