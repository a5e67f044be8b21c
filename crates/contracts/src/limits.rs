//! Every bound the public API enforces, and why that number.
//!
//! A limit keeps one request from taking a service's memory, disk or time from everyone
//! else, and keeps every sum inside an `i64` with room to spare.

/// Largest request body accepted, in bytes. An order of [`ITEMS_MAX`] items with the longest
/// SKUs is about 6 KiB of JSON; 64 KiB leaves room for whitespace and stops a client from
/// streaming megabytes into a parser.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// Items in one order. A food order rarely has more than a dozen lines; 50 is generous and
/// keeps an order row small.
pub const ITEMS_MAX: usize = 50;

/// Quantity of one item. Nobody orders more than a thousand of one dish; a larger number is
/// a typo or an attack.
pub const QUANTITY_MAX: u32 = 1_000;

/// Price of one unit, in cents: 100,000.00. Above any dish, and `QUANTITY_MAX * ITEMS_MAX *
/// UNIT_PRICE_CENTS_MAX` still fits an `i64` many times over.
pub const UNIT_PRICE_CENTS_MAX: i64 = 10_000_000;

/// Total of one order, in cents: 1,000,000.00. An order whose lines add up to more is refused
/// rather than left to overflow a wallet, a sum in Stats or a points balance.
pub const ORDER_TOTAL_CENTS_MAX: i64 = 100_000_000;

/// One top-up, in cents: 1,000,000.00, for the same reason as [`ORDER_TOTAL_CENTS_MAX`].
pub const TOP_UP_CENTS_MAX: i64 = 100_000_000;

/// A wallet's balance, in cents: top-ups beyond it are refused, so that no sum of balances
/// can come near `i64::MAX`.
pub const BALANCE_CENTS_MAX: i64 = 1_000_000_000_000;

/// Characters in an account name: enough for any real name, short enough to log.
pub const NAME_CHARS_MAX: usize = 100;

/// Characters in a SKU. SKUs are codes, not descriptions.
pub const SKU_CHARS_MAX: usize = 64;

/// Characters in an id or an `Idempotency-Key`. Our ids are 30; UUIDs are 36.
pub const ID_CHARS_MAX: usize = 64;

/// Orders returned by one listing. An account with more gets the newest.
pub const LIST_LIMIT_MAX: usize = 1_000;
