//! One peer of the network: a real swarm driven by its own task, which applies the
//! network's schedule, answers commands and reports its view and counters to a [`Board`].

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use libp2p::{PeerId, Swarm, swarm::SwarmEvent};
use libp2p_cyclon as cyclon;
use tokio::sync::{mpsc, oneshot};

pub(crate) type CyclonSwarm = Swarm<cyclon::Behaviour>;

/// A peer's shuffle counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) started: u64,
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) answered: u64,
}

impl Counters {
    fn of(behaviour: &cyclon::Behaviour) -> Self {
        let stats = behaviour.stats();
        Self {
            started: stats.shuffles_started,
            completed: stats.shuffles_completed,
            failed: stats.shuffles_failed.total(),
            answered: stats.inbound_answered,
        }
    }
}

/// What the network asks of a peer's task.
pub(crate) enum Command {
    Shuffle(oneshot::Sender<Result<cyclon::ShuffleId, cyclon::StartShuffleError>>),
    Schedule {
        schedule: Schedule,
        done: oneshot::Sender<()>,
    },
}

/// The network's shuffle schedule, which every peer applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) paused: bool,
    pub(crate) interval: Duration,
}

impl Schedule {
    /// Applies the schedule to a peer's behaviour. After a change, the behaviour's next
    /// shuffle comes after a random share of the interval, so that the peers do not shuffle
    /// in lockstep.
    fn apply(&self, behaviour: &mut cyclon::Behaviour) {
        if behaviour.config().shuffle_interval() != self.interval
            && let Err(error) = behaviour.set_shuffle_interval(self.interval)
        {
            tracing::warn!(%error, "interval not applied"); // Checked by `check_interval`.
        }
        if self.paused {
            behaviour.pause();
        } else {
            behaviour.resume();
        }
    }
}

/// Where a peer's task reports what its behaviour looks like after every step.
pub(crate) trait Board: Send + Sync + 'static {
    /// Records the view (as (peer, age), sorted), counters and schedule of peer `id`.
    fn publish(&self, id: PeerId, view: Vec<(PeerId, u32)>, counters: Counters, paused: bool);
}

/// The view as (peer, age), sorted by peer.
pub(crate) fn view_of(swarm: &CyclonSwarm) -> Vec<(PeerId, u32)> {
    let mut view: Vec<(PeerId, u32)> = swarm
        .behaviour()
        .view()
        .map(|e| (*e.peer_id(), e.age()))
        .collect();
    view.sort_unstable();
    view
}

/// One peer: drives its swarm and answers commands until the command channel closes (the
/// peer was killed), then drops the swarm.
pub(crate) async fn run_peer(
    mut swarm: CyclonSwarm,
    mut commands: mpsc::UnboundedReceiver<Command>,
    board: Arc<dyn Board>,
    mut schedule: Schedule,
) {
    let publish = |swarm: &CyclonSwarm, schedule: &Schedule| {
        let counters = Counters::of(swarm.behaviour());
        board.publish(
            *swarm.local_peer_id(),
            view_of(swarm),
            counters,
            schedule.paused,
        );
    };
    schedule.apply(swarm.behaviour_mut());
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                None => break,
                Some(Command::Shuffle(reply)) => {
                    let result = swarm.behaviour_mut().shuffle_now();
                    publish(&swarm, &schedule);
                    let _ = reply.send(result);
                    continue;
                }
                Some(Command::Schedule { schedule: new, done }) => {
                    schedule = new;
                    schedule.apply(swarm.behaviour_mut());
                    publish(&swarm, &schedule);
                    let _ = done.send(());
                    continue;
                }
            },
            event = swarm.select_next_some() => {
                if let SwarmEvent::Behaviour(cyclon::Event::ShuffleFailed { peer_id, error, .. }) = &event {
                    tracing::debug!(%peer_id, %error, "shuffle failed");
                }
            }
        }
        publish(&swarm, &schedule);
    }
}
