//! Friendly licence names, bundled with m365sync: what the admin center calls a SKU that Graph
//! only knows by id and part number. A SKU not listed here is shown by its part number — never
//! a bare GUID — and a sync reports it as new so that the catalogue can be extended.

/// (SKU id, part number, product name)
const SKUS: &[(&str, &str, &str)] = &[
    (
        "18181a46-0d4e-45cd-891e-60aabd171b4e",
        "STANDARDPACK",
        "Office 365 E1",
    ),
    (
        "6fd2c87f-b296-42f0-b197-1e91e994b900",
        "ENTERPRISEPACK",
        "Office 365 E3",
    ),
    (
        "c7df2760-2c81-4ef7-b578-5b5392b571df",
        "ENTERPRISEPREMIUM",
        "Office 365 E5",
    ),
    (
        "26d45bd9-adf1-46cd-a9e1-51e9a5524128",
        "ENTERPRISEPREMIUM_NOPSTNCONF",
        "Office 365 E5 (without Audio Conferencing)",
    ),
    (
        "05e9a617-0261-4cee-bb44-138d3ef5d965",
        "SPE_E3",
        "Microsoft 365 E3",
    ),
    (
        "06ebc4ee-1bb5-47dd-8120-11324bc54e06",
        "SPE_E5",
        "Microsoft 365 E5",
    ),
    (
        "66b55226-6b4f-492c-910c-a3b7a3c9d993",
        "SPE_F1",
        "Microsoft 365 F3",
    ),
    (
        "3b555118-da6a-4418-894f-7df1e2096870",
        "O365_BUSINESS_ESSENTIALS",
        "Microsoft 365 Business Basic",
    ),
    (
        "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
        "O365_BUSINESS_PREMIUM",
        "Microsoft 365 Business Standard",
    ),
    (
        "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
        "SPB",
        "Microsoft 365 Business Premium",
    ),
    (
        "cdd28e44-67e3-425e-be4c-737fab2899d3",
        "O365_BUSINESS",
        "Microsoft 365 Apps for business",
    ),
    (
        "c2273bd0-dff7-4215-9ef5-2c7bcfb06425",
        "OFFICESUBSCRIPTION",
        "Microsoft 365 Apps for enterprise",
    ),
    (
        "4b9405b0-7788-4568-add1-99614e613b69",
        "EXCHANGESTANDARD",
        "Exchange Online (Plan 1)",
    ),
    (
        "19ec0d23-8335-4cbd-94ac-6050e30712fa",
        "EXCHANGEENTERPRISE",
        "Exchange Online (Plan 2)",
    ),
    (
        "80b2d799-d2ba-4d2a-8842-fb0d0f3a4b82",
        "EXCHANGEDESKLESS",
        "Exchange Online Kiosk",
    ),
    (
        "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235",
        "POWER_BI_STANDARD",
        "Power BI (free)",
    ),
    (
        "f8a1db68-be16-40ed-86d5-cb42ce701560",
        "POWER_BI_PRO",
        "Power BI Pro",
    ),
    (
        "f30db892-07e9-47e9-837c-80727f46fd3d",
        "FLOW_FREE",
        "Microsoft Power Automate Free",
    ),
    (
        "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
        "AAD_PREMIUM",
        "Microsoft Entra ID P1",
    ),
    (
        "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
        "AAD_PREMIUM_P2",
        "Microsoft Entra ID P2",
    ),
    (
        "061f9ace-7d42-4136-88ac-31dc755f143f",
        "INTUNE_A",
        "Microsoft Intune Plan 1",
    ),
    (
        "efccb6f7-5641-4e0e-bd10-b4976e1bf68e",
        "EMS",
        "Enterprise Mobility + Security E3",
    ),
    (
        "b05e124f-c7cc-45a0-a6aa-8cf78c946968",
        "EMSPREMIUM",
        "Enterprise Mobility + Security E5",
    ),
    (
        "4ef96642-f096-40de-a3e9-d83fb2f90211",
        "ATP_ENTERPRISE",
        "Microsoft Defender for Office 365 (Plan 1)",
    ),
    (
        "710779e8-3d4a-4c88-adb9-386c958d1fdf",
        "TEAMS_EXPLORATORY",
        "Microsoft Teams Exploratory",
    ),
    (
        "639dec6b-bb19-468b-871c-c5c441c4b0cb",
        "Microsoft_365_Copilot",
        "Microsoft 365 Copilot",
    ),
    (
        "53818b1b-4a27-454b-8896-0dba576410e6",
        "PROJECTPROFESSIONAL",
        "Project Plan 3",
    ),
    (
        "c5928f49-12ba-48f7-ada3-0d743a3601d5",
        "VISIOCLIENT",
        "Visio Plan 2",
    ),
];

/// The product name of a SKU, by id first (part numbers have been reused across renames), then
/// by part number.
pub fn product_name(sku_id: &str, part_number: &str) -> Option<&'static str> {
    SKUS.iter()
        .find(|(id, _, _)| id.eq_ignore_ascii_case(sku_id.trim()))
        .or_else(|| {
            SKUS.iter()
                .find(|(_, part, _)| part.eq_ignore_ascii_case(part_number.trim()))
        })
        .map(|(_, _, name)| *name)
}

/// The part number of a SKU the catalogue knows by id.
pub fn part_number(sku_id: &str) -> Option<&'static str> {
    SKUS.iter()
        .find(|(id, _, _)| id.eq_ignore_ascii_case(sku_id.trim()))
        .map(|(_, part, _)| *part)
}

/// SKUs Microsoft gives away: self-service sign-ups, viral and exploratory licences that come
/// with a large seat count (10,000 or more) and no bill, so that their free seats are never
/// money spent on nothing.
const FREE_SKUS: &[&str] = &[
    "FLOW_FREE",
    "POWER_BI_STANDARD",
    "TEAMS_EXPLORATORY",
    "TEAMS_FREE",
    "POWERAPPS_VIRAL",
    "POWERAPPS_DEV",
    "CCIBOTS_PRIVPREV_VIRAL",
    "RIGHTSMANAGEMENT_ADHOC",
    "WINDOWS_STORE",
    "MICROSOFT_BUSINESS_CENTER",
];

/// Whether a SKU, by part number, is one Microsoft gives away.
pub fn is_free(part_number: &str) -> bool {
    FREE_SKUS
        .iter()
        .any(|free| free.eq_ignore_ascii_case(part_number.trim()))
}

/// What to call a SKU: its product name, else its part number, else (never seen) its id.
pub fn display_name(sku_id: &str, part_number: Option<&str>) -> String {
    match part_number.filter(|p| !p.trim().is_empty()) {
        Some(part) => product_name(sku_id, part)
            .map(str::to_string)
            .unwrap_or_else(|| part.to_string()),
        None => product_name(sku_id, "")
            .map(str::to_string)
            .unwrap_or_else(|| sku_id.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_id_then_part_number_then_the_part_number_itself() {
        assert_eq!(
            product_name("05E9A617-0261-4CEE-BB44-138D3EF5D965", "whatever"),
            Some("Microsoft 365 E3")
        );
        assert_eq!(
            product_name("00000000-0000-0000-0000-000000000000", "spb"),
            Some("Microsoft 365 Business Premium")
        );
        assert_eq!(
            display_name(
                "11111111-0000-0000-0000-000000000000",
                Some("Microsoft_Teams_Premium")
            ),
            "Microsoft_Teams_Premium"
        );
        assert_eq!(
            display_name("6fd2c87f-b296-42f0-b197-1e91e994b900", None),
            "Office 365 E3"
        );
    }

    #[test]
    fn ids_and_part_numbers_are_unique() {
        let mut ids: Vec<&str> = SKUS.iter().map(|s| s.0).collect();
        let mut parts: Vec<&str> = SKUS.iter().map(|s| s.1).collect();
        ids.sort();
        parts.sort();
        let (n_ids, n_parts) = (ids.len(), parts.len());
        ids.dedup();
        parts.dedup();
        assert_eq!((ids.len(), parts.len()), (n_ids, n_parts));
    }
}
