//! Stripe's behaviour, resource by resource, hooked into the engine (`engine::Behaviour`): one
//! file per area. A resource without a behaviour is create / retrieve / update / list / delete
//! as its data says (src/sandbox/stripe/resources.toml, fixtures/api/).

pub mod account_links;
pub mod accounts;
pub mod cards;
pub mod cash_balance;
mod catalog;
pub mod checkout;
pub mod connect;
mod customers;
mod first_invoice_items;
mod identity;
mod invoices;
pub mod issuing;
pub mod ledger;
pub mod meters;
pub mod money;
pub mod payments;
pub mod portal;
mod prorations;
mod quotes;
mod reporting;
mod schedules;
pub mod setup_intents;
mod subscription_items;
mod subscriptions;
pub mod test_clocks;

use super::engine::Behaviour;

/// Every behaviour, found by its object name.
pub static ALL: &[&dyn Behaviour] = &[
    &catalog::Products,
    &catalog::Prices,
    &catalog::Plans,
    &catalog::Coupons,
    &catalog::PromotionCodes,
    &catalog::TaxRates,
    &catalog::PaymentLinks,
    &money::Balance,
    &money::Payouts,
    &money::Topups,
    &money::Transfers,
    &money::TransferReversals,
    &accounts::Accounts,
    &accounts::Capabilities,
    &account_links::LoginLinks,
    &account_links::AccountLinks,
    &connect::ApplicationFees,
    &connect::FeeRefunds,
    &connect::BalanceTransactions,
    &cash_balance::CashBalanceTransactions,
    &cash_balance::CashBalances,
    &identity::VerificationSessions,
    &reporting::ReportRuns,
    &portal::PortalSessions,
    &issuing::Cards,
    &issuing::Authorizations,
    &issuing::Transactions,
    &test_clocks::TestClocks,
    &cards::PaymentMethods,
    &cards::Cards,
    &customers::Customers,
    &payments::PaymentIntents,
    &payments::Refunds,
    &payments::Disputes,
    &setup_intents::SetupIntents,
    &subscriptions::Subscriptions,
    &subscription_items::SubscriptionItems,
    &schedules::Schedules,
    &invoices::InvoiceItems,
    &invoices::Invoices,
    &invoices::CreditNotes,
    &quotes::Quotes,
    &checkout::Sessions,
    &meters::Meters,
    &meters::MeterEvents,
    &meters::MeterEventAdjustments,
    &meters::EventSummaries,
    &meters::Sessions,
    &meters::V2MeterEvents,
    &meters::V2MeterEventAdjustments,
];
