//! The licences the simulated tenants buy: real part numbers, SKU ids and service plans, so that
//! what the client reads looks like what Microsoft sends.

pub struct ServicePlan {
    pub id: &'static str,
    pub name: &'static str,
}

pub struct Sku {
    pub part_number: &'static str,
    pub sku_id: &'static str,
    pub plans: &'static [ServicePlan],
    /// Whether the SKU includes an Exchange Online mailbox.
    pub mailbox: bool,
}

const EXCHANGE_S_ENTERPRISE: ServicePlan = ServicePlan {
    id: "efb87545-963c-4e0d-99df-69c6916d9eb0",
    name: "EXCHANGE_S_ENTERPRISE",
};
const EXCHANGE_S_STANDARD: ServicePlan = ServicePlan {
    id: "9aaf7827-d63c-4b61-89c3-182f06f82e5c",
    name: "EXCHANGE_S_STANDARD",
};
const EXCHANGE_S_FOUNDATION: ServicePlan = ServicePlan {
    id: "113feb6c-3fe4-4440-bddc-54d774bf0318",
    name: "EXCHANGE_S_FOUNDATION",
};
const SHAREPOINTENTERPRISE: ServicePlan = ServicePlan {
    id: "5dbe027f-2339-4123-9542-606e4d348a72",
    name: "SHAREPOINTENTERPRISE",
};
const SHAREPOINTSTANDARD: ServicePlan = ServicePlan {
    id: "c7699d2e-19aa-44de-8edf-1736da088ca1",
    name: "SHAREPOINTSTANDARD",
};
const TEAMS1: ServicePlan = ServicePlan {
    id: "57ff2da0-773e-42df-b2af-ffb7a2317929",
    name: "TEAMS1",
};
const OFFICESUBSCRIPTION: ServicePlan = ServicePlan {
    id: "43de0ff5-c92c-492b-9116-175376d08c38",
    name: "OFFICESUBSCRIPTION",
};
const MCOSTANDARD: ServicePlan = ServicePlan {
    id: "0feaeb32-d00e-4d66-bd5a-43b5b83db82c",
    name: "MCOSTANDARD",
};
const INTUNE_A: ServicePlan = ServicePlan {
    id: "c1ec4a95-1f05-45b3-a911-aa3fa01094f5",
    name: "INTUNE_A",
};
const AAD_PREMIUM_PLAN: ServicePlan = ServicePlan {
    id: "41781fb2-bc02-4b7c-bd55-b576c07bb09d",
    name: "AAD_PREMIUM",
};
const BI_AZURE_P0: ServicePlan = ServicePlan {
    id: "2049e525-b859-401b-b2a0-e0a31c4b1fe4",
    name: "BI_AZURE_P0",
};
const TEAMSPRO_MGMT: ServicePlan = ServicePlan {
    id: "0504111f-feb8-4a3c-992a-70280f9a2869",
    name: "TEAMSPRO_MGMT",
};
const FLOW_P2_VIRAL: ServicePlan = ServicePlan {
    id: "50e68c76-46c6-4674-81f9-75456511b170",
    name: "FLOW_P2_VIRAL",
};

pub static SKUS: &[Sku] = &[
    Sku {
        part_number: "SPE_E3",
        sku_id: "05e9a617-0261-4cee-bb44-138d3ef5d965",
        plans: &[
            EXCHANGE_S_ENTERPRISE,
            SHAREPOINTENTERPRISE,
            TEAMS1,
            OFFICESUBSCRIPTION,
            MCOSTANDARD,
            INTUNE_A,
            AAD_PREMIUM_PLAN,
        ],
        mailbox: true,
    },
    Sku {
        part_number: "ENTERPRISEPACK",
        sku_id: "6fd2c87f-b296-42f0-b197-1e91e994b900",
        plans: &[
            EXCHANGE_S_ENTERPRISE,
            SHAREPOINTENTERPRISE,
            TEAMS1,
            OFFICESUBSCRIPTION,
            MCOSTANDARD,
        ],
        mailbox: true,
    },
    Sku {
        part_number: "O365_BUSINESS_PREMIUM",
        sku_id: "f245ecc8-75af-4f8e-b61f-27d8114de5f3",
        plans: &[
            EXCHANGE_S_STANDARD,
            SHAREPOINTSTANDARD,
            TEAMS1,
            OFFICESUBSCRIPTION,
            MCOSTANDARD,
        ],
        mailbox: true,
    },
    Sku {
        part_number: "SPB",
        sku_id: "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46",
        plans: &[
            EXCHANGE_S_STANDARD,
            SHAREPOINTSTANDARD,
            TEAMS1,
            OFFICESUBSCRIPTION,
            MCOSTANDARD,
            INTUNE_A,
            AAD_PREMIUM_PLAN,
        ],
        mailbox: true,
    },
    Sku {
        part_number: "EXCHANGESTANDARD",
        sku_id: "4b9405b0-7788-4568-add1-99614e613b69",
        plans: &[EXCHANGE_S_STANDARD],
        mailbox: true,
    },
    Sku {
        part_number: "POWER_BI_STANDARD",
        sku_id: "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235",
        plans: &[EXCHANGE_S_FOUNDATION, BI_AZURE_P0],
        mailbox: false,
    },
    Sku {
        part_number: "FLOW_FREE",
        sku_id: "f30db892-07e9-47e9-837c-80727f46fd3d",
        plans: &[EXCHANGE_S_FOUNDATION, FLOW_P2_VIRAL],
        mailbox: false,
    },
    // Newer than m365sync's bundled catalogue: its sync must show the part number and say it is new.
    Sku {
        part_number: "Microsoft_Teams_Premium",
        sku_id: "989a1621-93bc-4be0-835c-fe30171d6463",
        plans: &[EXCHANGE_S_FOUNDATION, TEAMSPRO_MGMT],
        mailbox: false,
    },
];

/// The SKUs a tenant of the given style holds: a main SKU or two, and free add-ons.
pub struct TenantLicensing {
    /// Main SKUs, one per licensed user.
    pub primary: [usize; 2],
    /// Mailbox-only SKU for front-line staff.
    pub kiosk: usize,
    /// Free or cheap add-ons some users also hold.
    pub addons: [usize; 3],
}

impl TenantLicensing {
    pub fn for_style(style: u64) -> Self {
        if style.is_multiple_of(2) {
            Self {
                primary: [0, 1],
                kiosk: 4,
                addons: [5, 6, 7],
            }
        } else {
            Self {
                primary: [2, 3],
                kiosk: 4,
                addons: [5, 6, 7],
            }
        }
    }

    /// Every SKU the tenant has bought, in a stable order.
    pub fn skus(&self) -> [usize; 6] {
        [
            self.primary[0],
            self.primary[1],
            self.kiosk,
            self.addons[0],
            self.addons[1],
            self.addons[2],
        ]
    }
}
