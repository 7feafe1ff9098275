//! The parameters of the shuffle rules ([`ShuffleParams`](crate::view::ShuffleParams)) and why a set of them cannot be
//! used ([`ParamsError`](crate::view::ParamsError)).

use super::Defence;

/// Default view size `c`.
pub(crate) const DEFAULT_VIEW_SIZE: usize = 20;
/// Default shuffle length `l`.
pub(crate) const DEFAULT_SHUFFLE_LENGTH: usize = 5;
/// Default upper bound for ages: received ages and ages grown by ageing are clamped to it.
pub(crate) const DEFAULT_MAX_AGE: u32 = 1_000;

/// How an initiator chooses the neighbour it shuffles with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShuffleMode {
    /// Enhanced shuffling (the Cyclon protocol): the oldest entry is the target, ties broken
    /// at random. Dead peers leave views quickly because old entries are contacted first.
    #[default]
    Enhanced,
    /// Basic shuffling (the paper's baseline): the target is a uniformly random entry.
    Basic,
}

/// The parameters of the shuffle rules, as the sans-IO core
/// ([`PartialView`](crate::view::PartialView)) takes them.
///
/// ```
/// use libp2p_cyclon::view::{ShuffleMode, ShuffleParams};
///
/// let params = ShuffleParams::new(20, 5).with_mode(ShuffleMode::Basic);
/// assert!(params.validate().is_ok());
/// assert!(ShuffleParams::new(3, 5).validate().is_err()); // l > c
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ShuffleParams {
    /// View (cache) size `c`: the most entries a view holds.
    pub view_size: usize,
    /// Shuffle length `l`: the most entries exchanged in each direction (`1 <= l <= c`).
    pub shuffle_length: usize,
    /// How the shuffle target is chosen.
    pub mode: ShuffleMode,
    /// Ages are clamped to this value, both when growing and when received.
    pub max_age: u32,
    /// The eclipse defence, if any.
    pub defence: Defence,
}

impl Default for ShuffleParams {
    fn default() -> Self {
        Self {
            view_size: DEFAULT_VIEW_SIZE,
            shuffle_length: DEFAULT_SHUFFLE_LENGTH,
            mode: ShuffleMode::Enhanced,
            max_age: DEFAULT_MAX_AGE,
            defence: Defence::Off,
        }
    }
}

/// Why a set of [`ShuffleParams`](crate::view::ShuffleParams) cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamsError {
    /// The view size is 0.
    #[error("view size must be at least 1")]
    ZeroViewSize,
    /// The shuffle length is 0.
    #[error("shuffle length must be at least 1")]
    ZeroShuffleLength,
    /// The shuffle length exceeds the view size.
    #[error("shuffle length {shuffle_length} exceeds view size {view_size}")]
    ShuffleLengthExceedsViewSize {
        /// The configured shuffle length.
        shuffle_length: usize,
        /// The configured view size.
        view_size: usize,
    },
    /// The defence's parameters cannot work with this view size.
    #[error("invalid defence parameters: {0}")]
    Defence(&'static str),
    /// A defence needs private keys: create the view with
    /// [`PartialView::with_rng`](crate::view::PartialView::with_rng).
    #[error("a defence needs private keys: create the view with PartialView::with_rng")]
    DefenceNeedsRng,
    /// [`Rejoin::probe_every`](crate::view::Rejoin::probe_every) is 0.
    #[error("rejoin probes need an interval of at least one round")]
    ZeroProbeInterval,
}

impl ShuffleParams {
    /// Enhanced shuffling with view size `c` and shuffle length `l`, and the default
    /// [`max_age`](Self::max_age).
    pub fn new(view_size: usize, shuffle_length: usize) -> Self {
        Self {
            view_size,
            shuffle_length,
            ..Self::default()
        }
    }

    /// Sets how the shuffle target is chosen.
    pub fn with_mode(mut self, mode: ShuffleMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the largest age kept.
    pub fn with_max_age(mut self, max_age: u32) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets the eclipse defence.
    pub fn with_defence(mut self, defence: Defence) -> Self {
        self.defence = defence;
        self
    }

    /// The most entries one request or reply carries and a receiver considers: `l`, plus
    /// [`SeededParams::extra_entries`](crate::view::SeededParams::extra_entries) under [`Defence::Seeded`](crate::view::Defence::Seeded).
    pub fn message_length(&self) -> usize {
        match self.defence {
            Defence::Seeded(seeded) => self.shuffle_length.saturating_add(seeded.extra_entries),
            _ => self.shuffle_length,
        }
    }

    /// Checks `1 <= l <= c` and the defence's parameters.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.view_size == 0 {
            return Err(ParamsError::ZeroViewSize);
        }
        if self.shuffle_length == 0 {
            return Err(ParamsError::ZeroShuffleLength);
        }
        if self.shuffle_length > self.view_size {
            return Err(ParamsError::ShuffleLengthExceedsViewSize {
                shuffle_length: self.shuffle_length,
                view_size: self.view_size,
            });
        }
        match self.defence {
            Defence::Off => {}
            Defence::Seeded(seeded) => {
                if seeded.extra_entries > self.view_size {
                    return Err(ParamsError::Defence("extra entries exceed the view size"));
                }
                if seeded.probe_every == 0 {
                    return Err(ParamsError::Defence("probe_every must be at least 1"));
                }
                if self.view_size > MAX_DEFENDED_VIEW_SIZE {
                    return Err(ParamsError::Defence("view size above 1024"));
                }
            }
            Defence::Anchored(anchored) => {
                if anchored.anchors >= self.view_size {
                    return Err(ParamsError::Defence("anchors must leave Cyclon entries"));
                }
                if anchored.samplers < anchored.anchors {
                    return Err(ParamsError::Defence("fewer samplers than anchors"));
                }
                if anchored.samplers > MAX_DEFENDED_VIEW_SIZE {
                    return Err(ParamsError::Defence("more than 1024 samplers"));
                }
            }
            Defence::Secure(secure) => secure.validate(self.view_size, self.shuffle_length)?,
        }
        Ok(())
    }
}

/// The largest view (seeded slots) or sampler set a defence supports: it keeps a few words
/// of private state per slot or sampler.
pub const MAX_DEFENDED_VIEW_SIZE: usize = 1024;
