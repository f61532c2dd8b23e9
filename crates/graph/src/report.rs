//! Usage reports: Graph answers 302 with a short-lived, pre-authenticated download URL. The
//! download is fetched without our bearer token, written to a temporary file as it arrives, and
//! read back row by row, so a report of a million users never sits in memory.

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom, Write};
use std::marker::PhantomData;

use reqwest::header;
use serde::de::DeserializeOwned;
use tracing::debug;

use crate::client::{Attempt, api_error, retry_answer, transport_failure};
use crate::retry::is_retryable_status;
use crate::{GraphClient, GraphError, Result};

/// A downloaded report on disk; removed when dropped.
pub struct ReportFile {
    file: tempfile::NamedTempFile,
    pub bytes: u64,
}

impl GraphClient {
    /// Downloads a report such as `reports/getMailboxUsageDetail(period='D7')`.
    pub async fn download_report(&self, function: &str) -> Result<ReportFile> {
        let url = self.absolute(&format!("v1.0/{}", function.trim_start_matches('/')))?;
        // Graph answers 302 with the download URL; a proxy may answer 200 with the file itself.
        let location = self
            .send_get(&url, |response| {
                let url = url.clone();
                async move {
                    if response.status().is_redirection() {
                        return match response
                            .headers()
                            .get(header::LOCATION)
                            .and_then(|v| v.to_str().ok())
                        {
                            Some(location) => Attempt::Done(Some(location.to_string())),
                            None => Attempt::Fail(GraphError::Malformed {
                                url: url.clone(),
                                detail: "a redirect without Location".into(),
                            }),
                        };
                    }
                    Attempt::Done(None)
                }
            })
            .await?;
        let Some(location) = location else {
            // Served directly: read it with the token, as the request was made.
            return self.stream_to_file(&url, true).await;
        };
        debug!(%location, "report download");
        self.stream_to_file(&location, false).await
    }

    async fn stream_to_file(&self, url: &str, authorised: bool) -> Result<ReportFile> {
        let io_error = |e: std::io::Error| GraphError::Report {
            detail: format!("temporary file: {e}"),
        };
        let token = if authorised {
            Some(self.token().await?)
        } else {
            None
        };
        self.with_retry(url, || async {
            let mut request = self.http().get(url);
            if let Some(token) = &token {
                request = request.header(header::AUTHORIZATION, token.bearer());
            }
            let mut response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    self.counters().unanswered();
                    return transport_failure(&e);
                }
            };
            let status = response.status().as_u16();
            self.counters().answered(status);
            if is_retryable_status(status) {
                return retry_answer(&response, "report download busy");
            }
            if !response.status().is_success() {
                return Attempt::Fail(api_error(response, url).await);
            }
            let mut file = match tempfile::NamedTempFile::new() {
                Ok(f) => f,
                Err(e) => return Attempt::Fail(io_error(e)),
            };
            let mut bytes = 0u64;
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        bytes = bytes.saturating_add(chunk.len() as u64);
                        if let Err(e) = file.write_all(&chunk) {
                            return Attempt::Fail(io_error(e));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return transport_failure(&e),
                }
            }
            if let Err(e) = file.flush() {
                return Attempt::Fail(io_error(e));
            }
            Attempt::Done(ReportFile { file, bytes })
        })
        .await
    }
}

impl ReportFile {
    /// Reads the CSV by header name. A UTF-8 byte-order mark, CRLF line ends, and columns missing
    /// or added in another report version are all accepted.
    pub fn rows<R: DeserializeOwned>(&self) -> Result<ReportRows<R>> {
        let mut file = self.file.reopen().map_err(|e| GraphError::Report {
            detail: e.to_string(),
        })?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| GraphError::Report {
                detail: e.to_string(),
            })?;
        ReportRows::new(BufReader::new(file))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut file = tempfile::NamedTempFile::new().map_err(|e| GraphError::Report {
            detail: e.to_string(),
        })?;
        file.write_all(bytes).map_err(|e| GraphError::Report {
            detail: e.to_string(),
        })?;
        Ok(Self {
            file,
            bytes: bytes.len() as u64,
        })
    }
}

/// The rows of a report, read one at a time.
pub struct ReportRows<R> {
    reader: csv::Reader<BufReader<File>>,
    headers: csv::StringRecord,
    record: csv::StringRecord,
    line: u64,
    _row: PhantomData<R>,
}

impl<R: DeserializeOwned> ReportRows<R> {
    fn new(source: BufReader<File>) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(source);
        let raw = reader
            .headers()
            .map_err(|e| GraphError::Report {
                detail: format!("header row: {e}"),
            })?
            .clone();
        // The byte-order mark sticks to the first header; stray spaces would hide a column.
        let headers: csv::StringRecord = raw
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').trim().to_string())
            .collect();
        Ok(Self {
            reader,
            headers,
            record: csv::StringRecord::new(),
            line: 1,
            _row: PhantomData,
        })
    }

    pub fn headers(&self) -> Vec<String> {
        self.headers.iter().map(str::to_string).collect()
    }

    /// The next row, `None` at the end. Blank rows are passed over (in a loop: a report of a
    /// million blank rows must not grow the stack). A row that cannot be read names its line.
    pub fn next_row(&mut self) -> Result<Option<R>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(e) => {
                    return Err(GraphError::Report {
                        detail: format!("line {}: {e}", self.line.saturating_add(1)),
                    });
                }
            }
            self.line = self.line.saturating_add(1);
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if self
                .record
                .iter()
                .any(|f| f.chars().any(crate::text::is_unstorable))
            {
                self.record = self.record.iter().map(crate::text::clean_str).collect();
            }
            // A short row (a column missing at the end) is padded so names still line up.
            while self.record.len() < self.headers.len() {
                self.record.push_field("");
            }
            return self
                .record
                .deserialize(Some(&self.headers))
                .map(Some)
                .map_err(|e| GraphError::Report {
                    detail: format!("line {}: {e}", self.line),
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MailboxUsageRow;
    use proptest::prelude::*;

    /// Every row of `bytes` read as a mailbox report, stopping at the first error; `Err` when
    /// the header row itself cannot be read.
    fn read_all(bytes: &[u8]) -> Result<Vec<Result<MailboxUsageRow>>> {
        let file = ReportFile::from_bytes(bytes)?;
        let mut rows = file.rows::<MailboxUsageRow>()?;
        let mut all = Vec::new();
        // A reader that kept answering would be a bug too: bound the reads by the input.
        for _ in 0..=bytes.len() + 1 {
            match rows.next_row() {
                Ok(None) => return Ok(all),
                Ok(Some(row)) => all.push(Ok(row)),
                Err(e) => {
                    all.push(Err(e));
                    return Ok(all);
                }
            }
        }
        panic!("more rows than lines in {} bytes", bytes.len());
    }

    #[test]
    fn a_long_run_of_blank_rows_is_passed_over_without_growing_the_stack() {
        let mut csv = String::from("User Principal Name,Item Count\n");
        for _ in 0..200_000 {
            csv.push_str(",\n");
        }
        csv.push_str("ann@contoso.com,3\n");
        let rows = read_all(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        let ann = rows.into_iter().next().unwrap().unwrap();
        assert_eq!(ann.item_count, Some(3));
    }

    #[test]
    fn numbers_too_large_or_odd_are_errors_that_name_their_line() {
        for value in [
            "99999999999999999999",
            "-99999999999999999999",
            "1e20",
            "NaN",
            "١٢",
        ] {
            let csv = format!("User Principal Name,Item Count\nann@contoso.com,{value}\n");
            let rows = read_all(csv.as_bytes()).unwrap();
            let err = rows.into_iter().next().unwrap().unwrap_err();
            assert!(err.to_string().contains("line 2"), "{value}: {err}");
        }
    }

    fn field() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9@._ ,\"-]{0,12}"
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_or_refused_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let _ = read_all(&bytes);
        }

        #[test]
        fn any_csv_shaped_text_is_read_or_refused_without_panicking(
            header in proptest::collection::vec(
                prop_oneof![
                    Just("User Principal Name".to_string()),
                    Just("Item Count".to_string()),
                    Just("Has Archive".to_string()),
                    Just("\u{feff}Report Refresh Date".to_string()),
                    field(),
                ],
                0..6,
            ),
            rows in proptest::collection::vec(proptest::collection::vec(field(), 0..8), 0..8),
        ) {
            let mut text = header.join(",");
            for row in rows {
                text.push_str("\r\n");
                text.push_str(&row.join(","));
            }
            let _ = read_all(text.as_bytes());
        }

        #[test]
        fn well_formed_rows_come_back_as_they_were_written(
            rows in proptest::collection::vec(
                ("[a-z]{1,8}@[a-z]{1,8}\\.example", any::<Option<i64>>(), any::<Option<bool>>(), "[a-zA-Z ,\"]{0,10}"),
                1..20,
            ),
        ) {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(["\u{feff}User Principal Name", "Storage Used (Byte)", "Has Archive", "Display Name"]).unwrap();
            for (upn, bytes, archive, name) in &rows {
                let bytes = bytes.map(|b| b.to_string()).unwrap_or_default();
                let archive = archive.map(|a| if a { "True" } else { "False" }).unwrap_or_default();
                writer.write_record([upn.as_str(), &bytes, archive, name]).unwrap();
            }
            let written = writer.into_inner().unwrap();
            let read = read_all(&written).unwrap();
            prop_assert_eq!(read.len(), rows.len());
            for (row, (upn, bytes, archive, name)) in read.into_iter().zip(rows) {
                let row = row.unwrap();
                prop_assert_eq!(row.user_principal_name.as_deref(), Some(upn.as_str()));
                prop_assert_eq!(row.storage_used_bytes, bytes);
                prop_assert_eq!(row.has_archive, archive);
                prop_assert_eq!(row.display_name.unwrap_or_default(), name);
            }
        }
    }

    #[test]
    fn bom_crlf_missing_and_extra_columns_are_tolerated() {
        let csv = "\u{feff}Report Refresh Date,User Principal Name,Display Name,Is Deleted,Storage Used (Byte),Item Count,Some Future Column,Has Archive\r\n\
                   2026-11-22,Ann@Contoso.com,Ann,False,1024,7,x,True\r\n\
                   \r\n\
                   2026-11-22,bob@contoso.com,Bob,True,,,y\r\n";
        let file = ReportFile::from_bytes(csv.as_bytes()).unwrap();
        let mut rows = file.rows::<MailboxUsageRow>().unwrap();
        assert_eq!(rows.headers()[0], "Report Refresh Date");
        let ann = rows.next_row().unwrap().unwrap();
        assert_eq!(ann.user_principal_name.as_deref(), Some("Ann@Contoso.com"));
        assert_eq!(
            (ann.storage_used_bytes, ann.item_count, ann.has_archive),
            (Some(1024), Some(7), Some(true))
        );
        assert_eq!(ann.prohibit_send_quota_bytes, None);
        let bob = rows.next_row().unwrap().unwrap();
        assert_eq!(
            (bob.is_deleted, bob.storage_used_bytes, bob.has_archive),
            (Some(true), None, None)
        );
        assert!(rows.next_row().unwrap().is_none());
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let csv = "User Principal Name,Item Count\nann@contoso.com,many\n";
        let file = ReportFile::from_bytes(csv.as_bytes()).unwrap();
        let err = file
            .rows::<MailboxUsageRow>()
            .unwrap()
            .next_row()
            .unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
