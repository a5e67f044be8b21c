//! The bench report.
//!
//! - [`model`]: what was measured, serialized as `report.json`.
//! - [`table`]: the terminal table ([`table::render`], [`table::render_violations`]).
//! - [`html`]: a self-contained `index.html` ([`html::render`]: no network, no script) with SVG
//!   charts: acknowledgement latency CDF per mode, t-visibility per mode and service, apply lag
//!   per service, throughput and lag over time, and the Stats delay sweep.
//! - [`figures`]: how numbers are written and the summary figures both tables show.
//! - [`svg`]: the hand-written chart primitives the page uses.
//!
//! Helper methods derived from the model (e.g. [`Run::label`](model::Run::label),
//! [`Visibility::probability_at`](model::Visibility::probability_at),
//! [`Report::is_sweep`]) are defined next to the renderers, not in [`model`].

mod derived;
pub mod figures;
pub mod html;
pub mod model;
pub mod svg;
pub mod table;

pub use derived::SERVICE_ORDER;
pub use model::Report;
