//! The partition format: a self-describing blob with a column directory.
//!
//! ```text
//! magic "CBP3" · month (i32, days since CE, a first of month) · rows (u32) ·
//! column count (u16) · directory: per column, name length (u8) · name (UTF-8) · kind (u8) ·
//! byte length (u32) · then each column's bytes, in directory order.
//!
//! kind 1, days:    one byte per row, the day of the month (1-based)
//! kind 2, text:    value count n (u32) · n + 1 offsets (u32) · the values' UTF-8 bytes ·
//!                  id width (u8: 1, 2 or 4) · one id per row; "" is no value
//! kind 3, cost:    mode (u8). Modes 0 and 1: shared scale (u8) · width (u8: 1, 2, 4, 8 or
//!                  16) · one two's-complement mantissa per row at the shared scale (the
//!                  smallest at which every cost is exact) · mode 1 only: each row's own
//!                  scale (u8 per row). Mode 2 (wide, costs that share no scale within an
//!                  i128): each row's decimal, as in kind 4 (never without a value)
//! kind 4, decimal: per row a tag (0xFF: no value, else the scale) and the zigzag LEB128
//!                  mantissa
//! ```
//!
//! All integers are little-endian. Columns are found by name, so a new column is a new entry
//! in [`Column`] and in the directory of the partitions written from then on: partitions
//! written before it read as without a value in it, and a reader skips columns it does not
//! know. Names are unique in a partition; a directory of at most 255 columns.

/// The magic of this format.
pub const MAGIC: &[u8; 4] = b"CBP3";

/// The physical kind of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One byte per row: a day of the month.
    Days = 1,
    /// Dictionary-encoded text.
    Text = 2,
    /// Costs: mantissas at one scale, with each row's own scale.
    Cost = 3,
    /// Optional exact decimals.
    Decimal = 4,
}

impl Kind {
    /// The kind of a directory entry's byte (`None` for a kind this version does not know).
    pub fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Days),
            2 => Some(Kind::Text),
            3 => Some(Kind::Cost),
            4 => Some(Kind::Decimal),
            _ => None,
        }
    }
}

/// The columns cloudbill writes, by name. Every text column is a dimension: providers and
/// charge categories are dictionary text like services and regions, so adding a provider
/// changes no codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Column {
    /// The day of the month.
    Day,
    /// The provider (`ProviderKind::as_str`).
    Provider,
    /// The FOCUS charge category.
    ChargeCategory,
    /// The billing currency (ISO 4217).
    Currency,
    /// The cloud's own account id.
    CloudAccount,
    /// The region (`""`: none).
    Region,
    /// The service.
    Service,
    /// The usage type.
    UsageType,
    /// The instance type (`""`: none).
    InstanceType,
    /// The tags, as a JSON object (`""`: none).
    Tags,
    /// The billed cost.
    Cost,
    /// The usage quantity.
    UsageQuantity,
    /// FOCUS EffectiveCost.
    EffectiveCost,
    /// FOCUS ListCost.
    ListCost,
}

impl Column {
    /// Every column, in the order a partition's directory lists them.
    pub const ALL: [Column; 14] = [
        Column::Day,
        Column::Provider,
        Column::ChargeCategory,
        Column::Currency,
        Column::CloudAccount,
        Column::Region,
        Column::Service,
        Column::UsageType,
        Column::InstanceType,
        Column::Tags,
        Column::Cost,
        Column::UsageQuantity,
        Column::EffectiveCost,
        Column::ListCost,
    ];

    /// The text columns, in directory order.
    pub const TEXT: [Column; 9] = [
        Column::Provider,
        Column::ChargeCategory,
        Column::Currency,
        Column::CloudAccount,
        Column::Region,
        Column::Service,
        Column::UsageType,
        Column::InstanceType,
        Column::Tags,
    ];

    /// The optional decimal columns, in directory order.
    pub const DECIMAL: [Column; 3] = [
        Column::UsageQuantity,
        Column::EffectiveCost,
        Column::ListCost,
    ];

    /// Its name in the directory.
    pub const fn name(self) -> &'static str {
        match self {
            Column::Day => "day",
            Column::Provider => "provider",
            Column::ChargeCategory => "charge_category",
            Column::Currency => "currency",
            Column::CloudAccount => "cloud_account",
            Column::Region => "region",
            Column::Service => "service",
            Column::UsageType => "usage_type",
            Column::InstanceType => "instance_type",
            Column::Tags => "tags",
            Column::Cost => "cost",
            Column::UsageQuantity => "usage_quantity",
            Column::EffectiveCost => "effective_cost",
            Column::ListCost => "list_cost",
        }
    }

    /// Its kind.
    pub const fn kind(self) -> Kind {
        match self {
            Column::Day => Kind::Days,
            Column::Cost => Kind::Cost,
            Column::UsageQuantity | Column::EffectiveCost | Column::ListCost => Kind::Decimal,
            _ => Kind::Text,
        }
    }
}
