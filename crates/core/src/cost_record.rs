//! One day of one cost line of one billing account.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{AccountId, Currency, DomainId, Money, ProviderKind, ValidationError};

/// A FOCUS dimension a record may carry beyond its fixed fields (ids, names, categories and
/// units the source sends), kept exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Attribute {
    /// FOCUS BillingAccountId: the payer account.
    BillingAccountId,
    /// FOCUS BillingAccountName.
    BillingAccountName,
    /// FOCUS SubAccountName (the sub-account's id is `cloud_account`).
    SubAccountName,
    /// FOCUS AvailabilityZone.
    AvailabilityZone,
    /// FOCUS ServiceCategory (Compute, Storage, …).
    ServiceCategory,
    /// FOCUS ServiceSubcategory.
    ServiceSubcategory,
    /// FOCUS SkuId.
    SkuId,
    /// FOCUS SkuPriceId.
    SkuPriceId,
    /// FOCUS ResourceId.
    ResourceId,
    /// FOCUS ResourceName.
    ResourceName,
    /// FOCUS ResourceType.
    ResourceType,
    /// FOCUS ChargeClass (`Correction` for a correction of an earlier period).
    ChargeClass,
    /// FOCUS ChargeDescription.
    ChargeDescription,
    /// FOCUS PricingCategory (Standard, Committed, Dynamic, Other).
    PricingCategory,
    /// FOCUS PricingUnit.
    PricingUnit,
    /// FOCUS ConsumedUnit.
    ConsumedUnit,
    /// FOCUS CommitmentDiscountId.
    CommitmentDiscountId,
    /// FOCUS InvoiceIssuerName.
    InvoiceIssuerName,
    /// FOCUS PublisherName.
    PublisherName,
    /// FOCUS RegionName.
    RegionName,
    /// FOCUS ProviderName (who makes the resources available: `AWS`).
    ProviderName,
    /// FOCUS ChargeFrequency (`One-Time`, `Recurring`, `Usage-Based`).
    ChargeFrequency,
    /// FOCUS CommitmentDiscountCategory (`Spend`, `Usage`).
    CommitmentDiscountCategory,
    /// FOCUS CommitmentDiscountName.
    CommitmentDiscountName,
    /// FOCUS CommitmentDiscountStatus (`Used`, `Unused`).
    CommitmentDiscountStatus,
    /// FOCUS CommitmentDiscountType.
    CommitmentDiscountType,
    /// FOCUS CommitmentDiscountUnit.
    CommitmentDiscountUnit,
    /// FOCUS InvoiceId.
    InvoiceId,
    /// FOCUS SkuMeter.
    SkuMeter,
    /// FOCUS CapacityReservationId.
    CapacityReservationId,
    /// FOCUS CapacityReservationStatus.
    CapacityReservationStatus,
    /// FOCUS BillingAccountType.
    BillingAccountType,
    /// FOCUS SubAccountType.
    SubAccountType,
    /// FOCUS PricingCurrency.
    PricingCurrency,
}

impl Attribute {
    /// Every attribute, in a stable order.
    pub const ALL: [Attribute; 34] = [
        Attribute::BillingAccountId,
        Attribute::BillingAccountName,
        Attribute::SubAccountName,
        Attribute::AvailabilityZone,
        Attribute::ServiceCategory,
        Attribute::ServiceSubcategory,
        Attribute::SkuId,
        Attribute::SkuPriceId,
        Attribute::ResourceId,
        Attribute::ResourceName,
        Attribute::ResourceType,
        Attribute::ChargeClass,
        Attribute::ChargeDescription,
        Attribute::PricingCategory,
        Attribute::PricingUnit,
        Attribute::ConsumedUnit,
        Attribute::CommitmentDiscountId,
        Attribute::InvoiceIssuerName,
        Attribute::PublisherName,
        Attribute::RegionName,
        Attribute::ProviderName,
        Attribute::ChargeFrequency,
        Attribute::CommitmentDiscountCategory,
        Attribute::CommitmentDiscountName,
        Attribute::CommitmentDiscountStatus,
        Attribute::CommitmentDiscountType,
        Attribute::CommitmentDiscountUnit,
        Attribute::InvoiceId,
        Attribute::SkuMeter,
        Attribute::CapacityReservationId,
        Attribute::CapacityReservationStatus,
        Attribute::BillingAccountType,
        Attribute::SubAccountType,
        Attribute::PricingCurrency,
    ];

    /// Its FOCUS column name (`ServiceCategory`).
    pub const fn focus_name(self) -> &'static str {
        match self {
            Attribute::BillingAccountId => "BillingAccountId",
            Attribute::BillingAccountName => "BillingAccountName",
            Attribute::SubAccountName => "SubAccountName",
            Attribute::AvailabilityZone => "AvailabilityZone",
            Attribute::ServiceCategory => "ServiceCategory",
            Attribute::ServiceSubcategory => "ServiceSubcategory",
            Attribute::SkuId => "SkuId",
            Attribute::SkuPriceId => "SkuPriceId",
            Attribute::ResourceId => "ResourceId",
            Attribute::ResourceName => "ResourceName",
            Attribute::ResourceType => "ResourceType",
            Attribute::ChargeClass => "ChargeClass",
            Attribute::ChargeDescription => "ChargeDescription",
            Attribute::PricingCategory => "PricingCategory",
            Attribute::PricingUnit => "PricingUnit",
            Attribute::ConsumedUnit => "ConsumedUnit",
            Attribute::CommitmentDiscountId => "CommitmentDiscountId",
            Attribute::InvoiceIssuerName => "InvoiceIssuerName",
            Attribute::PublisherName => "PublisherName",
            Attribute::RegionName => "RegionName",
            Attribute::ProviderName => "ProviderName",
            Attribute::ChargeFrequency => "ChargeFrequency",
            Attribute::CommitmentDiscountCategory => "CommitmentDiscountCategory",
            Attribute::CommitmentDiscountName => "CommitmentDiscountName",
            Attribute::CommitmentDiscountStatus => "CommitmentDiscountStatus",
            Attribute::CommitmentDiscountType => "CommitmentDiscountType",
            Attribute::CommitmentDiscountUnit => "CommitmentDiscountUnit",
            Attribute::InvoiceId => "InvoiceId",
            Attribute::SkuMeter => "SkuMeter",
            Attribute::CapacityReservationId => "CapacityReservationId",
            Attribute::CapacityReservationStatus => "CapacityReservationStatus",
            Attribute::BillingAccountType => "BillingAccountType",
            Attribute::SubAccountType => "SubAccountType",
            Attribute::PricingCurrency => "PricingCurrency",
        }
    }

    /// Its snake_case name (`service_category`), the name of its column in a partition.
    pub const fn snake_name(self) -> &'static str {
        match self {
            Attribute::BillingAccountId => "billing_account_id",
            Attribute::BillingAccountName => "billing_account_name",
            Attribute::SubAccountName => "sub_account_name",
            Attribute::AvailabilityZone => "availability_zone",
            Attribute::ServiceCategory => "service_category",
            Attribute::ServiceSubcategory => "service_subcategory",
            Attribute::SkuId => "sku_id",
            Attribute::SkuPriceId => "sku_price_id",
            Attribute::ResourceId => "resource_id",
            Attribute::ResourceName => "resource_name",
            Attribute::ResourceType => "resource_type",
            Attribute::ChargeClass => "charge_class",
            Attribute::ChargeDescription => "charge_description",
            Attribute::PricingCategory => "pricing_category",
            Attribute::PricingUnit => "pricing_unit",
            Attribute::ConsumedUnit => "consumed_unit",
            Attribute::CommitmentDiscountId => "commitment_discount_id",
            Attribute::InvoiceIssuerName => "invoice_issuer_name",
            Attribute::PublisherName => "publisher_name",
            Attribute::RegionName => "region_name",
            Attribute::ProviderName => "provider_name",
            Attribute::ChargeFrequency => "charge_frequency",
            Attribute::CommitmentDiscountCategory => "commitment_discount_category",
            Attribute::CommitmentDiscountName => "commitment_discount_name",
            Attribute::CommitmentDiscountStatus => "commitment_discount_status",
            Attribute::CommitmentDiscountType => "commitment_discount_type",
            Attribute::CommitmentDiscountUnit => "commitment_discount_unit",
            Attribute::InvoiceId => "invoice_id",
            Attribute::SkuMeter => "sku_meter",
            Attribute::CapacityReservationId => "capacity_reservation_id",
            Attribute::CapacityReservationStatus => "capacity_reservation_status",
            Attribute::BillingAccountType => "billing_account_type",
            Attribute::SubAccountType => "sub_account_type",
            Attribute::PricingCurrency => "pricing_currency",
        }
    }
}

/// A record's [`Attribute`] values (absent: the source sent none).
pub type Attributes = BTreeMap<Attribute, String>;

/// A FOCUS amount or quantity a record may carry beyond its fixed ones (`cost`,
/// `effective_cost`, `list_cost`, `usage_quantity`), kept exactly as sent (amounts in the
/// record's currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Measure {
    /// FOCUS ContractedCost: the cost at the negotiated (contracted) prices.
    ContractedCost,
    /// FOCUS ContractedUnitPrice.
    ContractedUnitPrice,
    /// FOCUS ListUnitPrice: the public price of one pricing unit.
    ListUnitPrice,
    /// FOCUS PricingQuantity: the quantity in pricing units.
    PricingQuantity,
    /// FOCUS CommitmentDiscountQuantity.
    CommitmentDiscountQuantity,
}

impl Measure {
    /// Every measure, in a stable order.
    pub const ALL: [Measure; 5] = [
        Measure::ContractedCost,
        Measure::ContractedUnitPrice,
        Measure::ListUnitPrice,
        Measure::PricingQuantity,
        Measure::CommitmentDiscountQuantity,
    ];

    /// Its FOCUS column name (`ContractedCost`).
    pub const fn focus_name(self) -> &'static str {
        match self {
            Measure::ContractedCost => "ContractedCost",
            Measure::ContractedUnitPrice => "ContractedUnitPrice",
            Measure::ListUnitPrice => "ListUnitPrice",
            Measure::PricingQuantity => "PricingQuantity",
            Measure::CommitmentDiscountQuantity => "CommitmentDiscountQuantity",
        }
    }

    /// Its snake_case name (`contracted_cost`), the name of its column in a partition.
    pub const fn snake_name(self) -> &'static str {
        match self {
            Measure::ContractedCost => "contracted_cost",
            Measure::ContractedUnitPrice => "contracted_unit_price",
            Measure::ListUnitPrice => "list_unit_price",
            Measure::PricingQuantity => "pricing_quantity",
            Measure::CommitmentDiscountQuantity => "commitment_discount_quantity",
        }
    }
}

/// A record's [`Measure`] values (absent: the source sent none).
pub type Measures = BTreeMap<Measure, Decimal>;

/// The source's own columns (FOCUS `x_`-prefixed columns), by their full name (`x_Discounts`),
/// kept as sent.
pub type Extensions = BTreeMap<String, String>;

/// The prefix of a provider's own column in FOCUS.
pub const EXTENSION_PREFIX: &str = "x_";

/// Resource tags (`key → value`), kept in key order.
pub type Tags = BTreeMap<String, String>;

/// FOCUS charge categories.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(try_from = "String", into = "String")]
pub enum ChargeCategory {
    /// Metered usage (the default).
    #[default]
    Usage,
    /// Up-front or recurring purchases (reservations, savings plans).
    Purchase,
    /// Taxes.
    Tax,
    /// Credits and refunds.
    Credit,
    /// Corrections and other adjustments.
    Adjustment,
}

impl ChargeCategory {
    /// The FOCUS spelling (`Usage`, `Purchase`, `Tax`, `Credit`, `Adjustment`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeCategory::Usage => "Usage",
            ChargeCategory::Purchase => "Purchase",
            ChargeCategory::Tax => "Tax",
            ChargeCategory::Credit => "Credit",
            ChargeCategory::Adjustment => "Adjustment",
        }
    }
}

impl FromStr for ChargeCategory {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // The FOCUS spellings first, without allocating.
        match s {
            "Usage" => return Ok(ChargeCategory::Usage),
            "Purchase" => return Ok(ChargeCategory::Purchase),
            "Tax" => return Ok(ChargeCategory::Tax),
            "Credit" => return Ok(ChargeCategory::Credit),
            "Adjustment" => return Ok(ChargeCategory::Adjustment),
            _ => {}
        }
        match s.trim().to_ascii_lowercase().as_str() {
            "usage" => Ok(ChargeCategory::Usage),
            "purchase" => Ok(ChargeCategory::Purchase),
            "tax" => Ok(ChargeCategory::Tax),
            "credit" => Ok(ChargeCategory::Credit),
            "adjustment" => Ok(ChargeCategory::Adjustment),
            _ => Err(ValidationError::Unknown {
                what: "charge category",
                value: s.to_owned(),
                expected: "Usage, Purchase, Tax, Credit, Adjustment",
            }),
        }
    }
}

impl TryFrom<String> for ChargeCategory {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<ChargeCategory> for String {
    fn from(value: ChargeCategory) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for ChargeCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cost record: what one account was charged on one UTC day for one line of usage.
///
/// The amount is exact ([`Money`]: decimal plus currency). Optional FOCUS amounts
/// (`effective_cost`, `list_cost`) share the record's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostRecord {
    /// Owning domain.
    pub domain: DomainId,
    /// The billing service account the record was synced or imported through.
    pub service_account: AccountId,
    /// The provider it came from.
    pub provider: ProviderKind,
    /// The cloud's own account id (e.g. a 12-digit AWS account).
    pub cloud_account: String,
    /// UTC calendar day of the charge.
    pub date: NaiveDate,
    /// Cloud region (e.g. `us-east-1`), `""` when the charge has none.
    pub region: String,
    /// Service (e.g. `AmazonEC2`).
    pub service: String,
    /// Usage type (e.g. `BoxUsage:t3.micro`).
    pub usage_type: String,
    /// Instance type, when the line has one.
    pub instance_type: Option<String>,
    /// Usage quantity, exact.
    pub usage_quantity: Decimal,
    /// The billed cost; negative for credits.
    pub cost: Money,
    /// FOCUS EffectiveCost, when the source has it.
    pub effective_cost: Option<Decimal>,
    /// FOCUS ListCost, when the source has it.
    pub list_cost: Option<Decimal>,
    /// FOCUS charge category.
    pub charge_category: ChargeCategory,
    /// Resource tags.
    pub tags: Tags,
    /// The FOCUS dimensions the source sent beyond the fields above.
    #[serde(default)]
    pub attributes: Attributes,
    /// The FOCUS amounts and quantities the source sent beyond the fields above.
    #[serde(default)]
    pub measures: Measures,
    /// The source's own (`x_`) columns.
    #[serde(default)]
    pub extensions: Extensions,
}

impl CostRecord {
    /// The record's currency.
    pub fn currency(&self) -> Currency {
        self.cost.currency()
    }
}
