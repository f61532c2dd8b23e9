//! The software Intune detects on the simulated devices, named as real installers name
//! themselves: one product under several names and versions ("7-Zip 23.01 (x64)", "7-Zip 19.00
//! (x64)", "7-Zip 22.01"), architecture and language in the name, editions, trademark signs,
//! KB updates, and a few in-house apps no public rule knows. A device has at most one variant
//! of each family, chosen by its number, so that counts are deterministic.

use std::sync::LazyLock;

use crate::people::hash3;

/// (display name, version, publisher, platform, size in bytes)
type Variant = (&'static str, &'static str, &'static str, &'static str, i64);

/// One product as installers name it.
pub(crate) struct Family {
    /// Percent of the devices it may be on that have it.
    pub(crate) share: u64,
    pub(crate) laptop: bool,
    pub(crate) phone: bool,
    pub(crate) variants: &'static [Variant],
}

const MS: &str = "Microsoft Corporation";
const W: &str = "windows";

pub(crate) const FAMILIES: &[Family] = &[
    Family {
        share: 95,
        laptop: true,
        phone: false,
        variants: &[
            ("Microsoft Edge", "131.0.2903.70", MS, W, 512_000_000),
            ("Microsoft Edge", "130.0.2849.80", MS, W, 508_000_000),
        ],
    },
    Family {
        share: 90,
        laptop: true,
        phone: false,
        variants: &[(
            "Microsoft Edge WebView2 Runtime",
            "131.0.2903.70",
            MS,
            W,
            480_000_000,
        )],
    },
    Family {
        share: 66,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Google Chrome",
                "131.0.6778.86",
                "Google LLC",
                W,
                420_000_000,
            ),
            (
                "Google Chrome",
                "131.0.6778.70",
                "Google LLC",
                W,
                420_000_000,
            ),
            (
                "Google Chrome",
                "129.0.6668.101",
                "Google LLC",
                W,
                410_000_000,
            ),
        ],
    },
    Family {
        share: 20,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Mozilla Firefox (x64 en-US)",
                "133.0",
                "Mozilla",
                W,
                240_000_000,
            ),
            (
                "Mozilla Firefox (x64 de)",
                "132.0.2",
                "Mozilla",
                W,
                240_000_000,
            ),
            (
                "Mozilla Firefox ESR (x64 en-US)",
                "128.5.0",
                "Mozilla",
                W,
                230_000_000,
            ),
        ],
    },
    Family {
        share: 66,
        laptop: true,
        phone: false,
        variants: &[
            ("Microsoft Teams", "24295.605.3225.8804", MS, W, 380_000_000),
            (
                "Microsoft Teams classic",
                "1.7.00.21751",
                MS,
                W,
                300_000_000,
            ),
            (
                "Teams Machine-Wide Installer",
                "1.5.0.30767",
                MS,
                W,
                120_000_000,
            ),
        ],
    },
    Family {
        share: 85,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Microsoft 365 Apps for enterprise - en-us",
                "16.0.17928.20216",
                MS,
                W,
                3_200_000_000,
            ),
            (
                "Microsoft 365 Apps for business - de-de",
                "16.0.17928.20216",
                MS,
                W,
                3_100_000_000,
            ),
            (
                "Microsoft 365 - en-us",
                "16.0.18129.20116",
                MS,
                W,
                3_200_000_000,
            ),
            (
                "Microsoft Office Professional Plus 2016",
                "16.0.4266.1001",
                MS,
                W,
                2_000_000_000,
            ),
        ],
    },
    Family {
        share: 40,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Security Update for Microsoft Office 2016 (KB5002121) 64-Bit Edition",
                "",
                MS,
                W,
                120_000_000,
            ),
            (
                "Update for Microsoft OneDrive for Business (KB5002109) 64-Bit Edition",
                "",
                MS,
                W,
                40_000_000,
            ),
        ],
    },
    Family {
        share: 88,
        laptop: true,
        phone: false,
        variants: &[
            ("Microsoft OneDrive", "24.221.1028.0001", MS, W, 280_000_000),
            ("Microsoft OneDrive", "24.201.1006.0005", MS, W, 280_000_000),
        ],
    },
    Family {
        share: 80,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135",
                "14.38.33135.0",
                MS,
                W,
                20_000_000,
            ),
            (
                "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.40.33810",
                "14.40.33810.0",
                MS,
                W,
                20_000_000,
            ),
            (
                "Microsoft Visual C++ 2013 Redistributable (x86) - 12.0.40664",
                "12.0.40664.0",
                MS,
                W,
                17_000_000,
            ),
            (
                "Microsoft Visual C++ 2010  x64 Redistributable - 10.0.40219",
                "10.0.40219",
                MS,
                W,
                13_000_000,
            ),
        ],
    },
    Family {
        share: 45,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Microsoft .NET Runtime - 8.0.11 (x64)",
                "8.0.11",
                MS,
                W,
                68_000_000,
            ),
            (
                "Microsoft Windows Desktop Runtime - 6.0.36 (x64)",
                "6.0.36",
                MS,
                W,
                90_000_000,
            ),
            (
                "Microsoft ASP.NET Core 8.0.11 - Shared Framework (x64)",
                "8.0.11",
                MS,
                W,
                30_000_000,
            ),
        ],
    },
    Family {
        share: 30,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Zoom Workplace",
                "6.2.11",
                "Zoom Video Communications, Inc.",
                W,
                250_000_000,
            ),
            (
                "Zoom(64bit)",
                "5.17.11",
                "Zoom Video Communications, Inc.",
                W,
                240_000_000,
            ),
            (
                "Zoom Outlook Plugin",
                "5.17.1",
                "Zoom Video Communications, Inc.",
                W,
                12_000_000,
            ),
        ],
    },
    Family {
        share: 50,
        laptop: true,
        phone: false,
        variants: &[
            ("7-Zip 23.01 (x64)", "23.01", "Igor Pavlov", W, 5_600_000),
            ("7-Zip 19.00 (x64)", "19.00", "Igor Pavlov", W, 5_100_000),
            ("7-Zip 22.01", "22.01", "Igor Pavlov", W, 5_300_000),
        ],
    },
    Family {
        share: 60,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Adobe Acrobat Reader",
                "24.004.20272",
                "Adobe",
                W,
                700_000_000,
            ),
            (
                "Adobe Acrobat Reader DC MUI",
                "23.008.20470",
                "Adobe Systems Incorporated",
                W,
                690_000_000,
            ),
            (
                "Adobe Acrobat (64-bit)",
                "24.004.20272",
                "Adobe Inc.",
                W,
                900_000_000,
            ),
        ],
    },
    Family {
        share: 25,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Notepad++ (64-bit x64)",
                "8.6.9",
                "Notepad++ Team",
                W,
                15_000_000,
            ),
            (
                "Notepad++ (32-bit x86)",
                "8.4.2",
                "Notepad++ Team",
                W,
                13_000_000,
            ),
        ],
    },
    Family {
        share: 18,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Java 8 Update 401 (64-bit)",
                "8.0.4010.10",
                "Oracle Corporation",
                W,
                220_000_000,
            ),
            (
                "Java(TM) 8 Update 351",
                "8.0.3510.10",
                "Oracle Corporation",
                W,
                210_000_000,
            ),
        ],
    },
    Family {
        share: 12,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Python 3.12.1 (64-bit)",
                "3.12.1150.0",
                "Python Software Foundation",
                W,
                100_000_000,
            ),
            (
                "Python 3.11.4 Core Interpreter (64-bit)",
                "3.11.4150.0",
                "Python Software Foundation",
                W,
                20_000_000,
            ),
        ],
    },
    Family {
        share: 15,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Microsoft Visual Studio Code (User)",
                "1.95.3",
                MS,
                W,
                380_000_000,
            ),
            ("Microsoft Visual Studio Code", "1.94.2", MS, W, 380_000_000),
        ],
    },
    Family {
        share: 10,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Git version 2.47.0",
                "2.47.0",
                "The Git Development Community",
                W,
                330_000_000,
            ),
            (
                "Git",
                "2.43.0",
                "The Git Development Community",
                W,
                320_000_000,
            ),
        ],
    },
    Family {
        share: 20,
        laptop: true,
        phone: false,
        variants: &[("VLC media player", "3.0.21", "VideoLAN", W, 170_000_000)],
    },
    Family {
        share: 22,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Cisco Secure Client - AnyConnect VPN",
                "5.1.2.42",
                "Cisco Systems, Inc.",
                W,
                60_000_000,
            ),
            (
                "Cisco AnyConnect Secure Mobility Client",
                "4.10.07073",
                "Cisco Systems, Inc.",
                W,
                55_000_000,
            ),
        ],
    },
    Family {
        share: 15,
        laptop: true,
        phone: false,
        variants: &[
            ("TeamViewer", "15.59.5", "TeamViewer", W, 90_000_000),
            (
                "TeamViewer Host",
                "15.48.4",
                "TeamViewer Germany GmbH",
                W,
                80_000_000,
            ),
        ],
    },
    Family {
        share: 35,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Dell Command | Update for Windows Universal",
                "5.4.0",
                "Dell Inc.",
                W,
                40_000_000,
            ),
            (
                "HP Support Assistant",
                "9.36.17.0",
                "HP Inc.",
                W,
                100_000_000,
            ),
            (
                "Lenovo Vantage Service",
                "4.0.11.0",
                "Lenovo Group Ltd.",
                W,
                60_000_000,
            ),
        ],
    },
    Family {
        share: 30,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Intel® Graphics Driver",
                "31.0.101.5590",
                "Intel Corporation",
                W,
                900_000_000,
            ),
            (
                "Realtek High Definition Audio Driver",
                "6.0.9549.1",
                "Realtek Semiconductor Corp.",
                W,
                250_000_000,
            ),
        ],
    },
    Family {
        share: 8,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Visual Studio Professional 2022",
                "17.11.5",
                MS,
                W,
                6_000_000_000,
            ),
            (
                "Visual Studio Community 2022",
                "17.12.0",
                MS,
                W,
                5_500_000_000,
            ),
        ],
    },
    // In-house and niche software: no bundled rule knows these, so they are the residue.
    Family {
        share: 12,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Contoso Timesheets 2.1 (x64)",
                "2.1.0",
                "Contoso Ltd.",
                W,
                30_000_000,
            ),
            (
                "Contoso Timesheets 1.9",
                "1.9.4",
                "Contoso Ltd.",
                W,
                28_000_000,
            ),
        ],
    },
    Family {
        share: 6,
        laptop: true,
        phone: false,
        variants: &[(
            "DATEV Arbeitsplatz pro",
            "16.4",
            "DATEV eG",
            W,
            1_500_000_000,
        )],
    },
    Family {
        share: 9,
        laptop: true,
        phone: false,
        variants: &[("Greenshot 1.2.10.6", "1.2.10.6", "Greenshot", W, 4_000_000)],
    },
    Family {
        share: 70,
        laptop: false,
        phone: true,
        variants: &[
            ("Microsoft Authenticator", "6.8.17", MS, "ios", 180_000_000),
            (
                "Microsoft Authenticator",
                "6.2409.6094",
                MS,
                "androidWorkProfile",
                90_000_000,
            ),
        ],
    },
    Family {
        share: 66,
        laptop: false,
        phone: true,
        variants: &[
            ("Outlook", "4.2447.0", MS, "ios", 290_000_000),
            (
                "Microsoft Outlook",
                "4.2446.1",
                MS,
                "androidWorkProfile",
                160_000_000,
            ),
        ],
    },
    Family {
        share: 55,
        laptop: false,
        phone: true,
        variants: &[("Company Portal", "5.2411.0", MS, "ios", 80_000_000)],
    },
    Family {
        share: 66,
        laptop: false,
        phone: true,
        variants: &[
            (
                "WhatsApp",
                "24.23.79",
                "WhatsApp Inc.",
                "androidWorkProfile",
                120_000_000,
            ),
            (
                "WhatsApp Business",
                "2.24.23.78",
                "WhatsApp LLC",
                "ios",
                150_000_000,
            ),
        ],
    },
    // Look-alikes the rules must keep apart from the products above: a newer JDK beside Java 8,
    // the build tools beside Visual Studio, Teams' meeting add-in beside Teams.
    Family {
        share: 12,
        laptop: true,
        phone: false,
        variants: &[
            (
                "Java(TM) SE Development Kit 17.0.8 (64-bit)",
                "17.0.8.0",
                "Oracle Corporation",
                W,
                310_000_000,
            ),
            (
                "Java(TM) SE Development Kit 21.0.5 (64-bit)",
                "21.0.5.0",
                "Oracle Corporation",
                W,
                330_000_000,
            ),
        ],
    },
    Family {
        share: 8,
        laptop: true,
        phone: false,
        variants: &[(
            "Visual Studio Build Tools 2022",
            "17.11.5",
            MS,
            W,
            2_100_000_000,
        )],
    },
    Family {
        share: 60,
        laptop: true,
        phone: false,
        variants: &[(
            "Microsoft Teams Meeting Add-in for Microsoft Office",
            "1.24.22415",
            MS,
            W,
            32_000_000,
        )],
    },
    // An installer that writes its version with a "v", and one that writes no name at all.
    Family {
        share: 20,
        laptop: true,
        phone: false,
        variants: &[("Greenshot", "v1.2.10.6", "Greenshot", W, 4_000_000)],
    },
    Family {
        share: 3,
        laptop: true,
        phone: false,
        variants: &[("", "1.0.0", "", W, 1_000_000)],
    },
];

/// Every detected app: (family, variant), in a fixed order that gives each its id.
pub(crate) static APPS: LazyLock<Vec<(usize, usize)>> = LazyLock::new(|| {
    FAMILIES
        .iter()
        .enumerate()
        .flat_map(|(f, family)| (0..family.variants.len()).map(move |v| (f, v)))
        .collect()
});

pub(crate) fn variant(app: usize) -> &'static Variant {
    let (family, variant) = APPS[app];
    &FAMILIES[family].variants[variant]
}

/// Whether the device numbered `device` (a phone or not) has the detected app `app`.
pub(crate) fn has_app(device: u64, phone: bool, app: usize) -> bool {
    let (f, v) = APPS[app];
    let family = &FAMILIES[f];
    (if phone { family.phone } else { family.laptop })
        && hash3(device, f as u64, 0xa55) % 100 < family.share
        && hash3(device, f as u64, 0xb0b) % family.variants.len() as u64 == v as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_has_at_most_one_variant_of_a_family() {
        for device in 0..500 {
            for (f, family) in FAMILIES.iter().enumerate() {
                let apps: Vec<usize> = (0..APPS.len())
                    .filter(|a| APPS[*a].0 == f && has_app(device, false, *a))
                    .collect();
                assert!(
                    apps.len() <= 1,
                    "device {device} has {} of {:?}",
                    apps.len(),
                    family.variants[0].0
                );
            }
        }
    }
}
