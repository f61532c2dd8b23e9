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
                Err(e) => return transport_failure(&e),
            };
            let status = response.status().as_u16();
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
                        bytes += chunk.len() as u64;
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

    /// The next row, `None` at the end. A row that cannot be read names its line.
    pub fn next_row(&mut self) -> Result<Option<R>> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                self.line += 1;
                if self.record.iter().all(|f| f.trim().is_empty()) {
                    return self.next_row();
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
                self.record
                    .deserialize(Some(&self.headers))
                    .map(Some)
                    .map_err(|e| GraphError::Report {
                        detail: format!("line {}: {e}", self.line),
                    })
            }
            Err(e) => Err(GraphError::Report {
                detail: format!("line {}: {e}", self.line + 1),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MailboxUsageRow;

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
