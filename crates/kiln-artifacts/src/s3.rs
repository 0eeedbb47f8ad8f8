//! Artifacts in an S3-compatible bucket (AWS, MinIO, moto, Ceph, R2, …) under an optional key
//! prefix, keys laid out as MLflow's S3 artifact repository lays them out
//! (`<prefix>/<exp>/<run>/artifacts/…`, names verbatim).

use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::{ArtifactError, Download, Entry, OpenError};

/// Bodies up to this size go up in one PUT; larger ones as a multipart upload of parts this
/// size (S3's minimum part is 5 MiB), at most [`PARTS_IN_FLIGHT`] parts at once, so an upload
/// holds at most a few parts in memory whatever its size.
const PART_BYTES: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;

#[derive(Debug)]
pub(crate) struct Bucket {
    store: Arc<AmazonS3>,
    /// Key prefix inside the bucket, without leading or trailing `/` (may be empty).
    prefix: String,
}

fn remote(what: &'static str, path: &str) -> impl FnOnce(object_store::Error) -> ArtifactError {
    let path = path.to_owned();
    move |source| ArtifactError::Remote { what, path, source }
}

impl Bucket {
    /// `rest` is `bucket[/prefix]` (from `s3://bucket[/prefix]`).
    pub(crate) fn open(dest: &str, rest: &str) -> Result<Self, OpenError> {
        let fail = |message: String| OpenError::S3 { dest: dest.to_owned(), message };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(fail("no bucket name (s3://bucket/prefix)".into()));
        }
        let prefix = prefix.trim_matches('/').to_owned();
        if !prefix.is_empty() {
            crate::safe_relative(&prefix).map_err(|_| fail(format!("invalid key prefix '{prefix}'")))?;
        }
        // reqwest is built without a default TLS crypto provider (see the workspace manifest):
        // install ring's once; a second install (tests, a second store) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        // MLflow's own variable for a non-AWS endpoint; AWS_ENDPOINT_URL is read by from_env.
        if let Ok(endpoint) = std::env::var("MLFLOW_S3_ENDPOINT_URL")
            && !endpoint.is_empty()
        {
            b = b.with_endpoint(endpoint);
        }
        let endpoint = std::env::var("MLFLOW_S3_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            // A local MinIO or moto speaks plain HTTP; only allowed when the endpoint says so.
            b = b.with_allow_http(true);
        }
        let store = b.build().map_err(|e| fail(e.to_string()))?;
        Ok(Self { store: Arc::new(store), prefix })
    }

    fn key(&self, rel: &FsPath) -> Result<Path, ArtifactError> {
        let rel = crate::key_of(rel);
        let full = match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel,
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.prefix),
        };
        // Verbatim keys (no percent-encoding of `%`, spaces or non-ASCII), as boto writes them;
        // `parse` only refuses what `safe_relative` already refused.
        Path::parse(&full).map_err(|_| ArtifactError::InvalidPath(full))
    }

    pub(crate) async fn put(
        &self,
        shown: &str,
        rel: &FsPath,
        mut body: impl Stream<Item = Result<Bytes, String>> + Unpin + Send,
    ) -> Result<(), ArtifactError> {
        let key = self.key(rel)?;
        let interrupted = |message| ArtifactError::Interrupted { path: shown.to_owned(), message };
        // Read up to one part: most artifacts are small and go up in a single PUT.
        let mut head = Vec::new();
        let mut head_len = 0;
        while head_len < PART_BYTES {
            match body.next().await {
                Some(chunk) => {
                    let chunk = chunk.map_err(interrupted)?;
                    head_len += chunk.len();
                    head.push(chunk);
                }
                None => {
                    let payload: PutPayload = head.into_iter().collect();
                    self.store.put(&key, payload).await.map_err(remote("store", shown))?;
                    return Ok(());
                }
            }
        }
        let upload = self.store.put_multipart(&key).await.map_err(remote("start the upload of", shown))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        for chunk in head {
            w.put(chunk);
        }
        let streamed = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(interrupted)?;
                w.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(remote("upload", shown))?;
                w.put(chunk);
            }
            Ok(())
        }
        .await;
        match streamed {
            // Until `finish` completes the upload, no object exists under the key.
            Ok(()) => w.finish().await.map(drop).map_err(remote("finish the upload of", shown)),
            Err(e) => {
                if let Err(abort) = w.abort().await {
                    tracing::warn!(error = %abort, path = shown, "cannot abort a failed multipart upload");
                }
                Err(e)
            }
        }
    }

    pub(crate) async fn get(&self, shown: &str, rel: &FsPath) -> Result<Download, ArtifactError> {
        let key = self.key(rel)?;
        match self.store.get(&key).await {
            Ok(r) => {
                let size = r.meta.size;
                let stream = r.into_stream().map_err(std::io::Error::other).boxed();
                Ok(Download { size, stream })
            }
            Err(object_store::Error::NotFound { .. }) => {
                // A "directory" in a bucket is a prefix with objects under it.
                let mut under = self.store.list(Some(&key));
                if matches!(under.next().await, Some(Ok(_))) {
                    Err(ArtifactError::IsDirectory(shown.to_owned()))
                } else {
                    Err(ArtifactError::NotFound(shown.to_owned()))
                }
            }
            Err(e) => Err(remote("read", shown)(e)),
        }
    }

    pub(crate) async fn list(&self, shown: &str, rel: &FsPath) -> Result<Vec<Entry>, ArtifactError> {
        let key = self.key(rel)?;
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let listed = self.store.list_with_delimiter(prefix).await.map_err(remote("list", shown))?;
        let dirs = listed.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_owned));
        let mut out: Vec<Entry> = dirs.map(|name| Entry { name, is_dir: true, size: None }).collect();
        for o in &listed.objects {
            if let Some(name) = o.location.filename() {
                out.push(Entry { name: name.to_owned(), is_dir: false, size: Some(o.size) });
            }
        }
        Ok(out)
    }

    pub(crate) async fn delete(&self, shown: &str, rel: &FsPath) -> Result<(), ArtifactError> {
        let key = self.key(rel)?;
        // The object itself (a file) and everything under it (a directory), as MLflow's
        // `delete_artifacts` does.
        let mut keys: Vec<Path> =
            self.store.list(Some(&key)).map_ok(|m| m.location).try_collect().await.map_err(remote("list", shown))?;
        match self.store.head(&key).await {
            Ok(_) => keys.push(key),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(remote("read", shown)(e)),
        }
        if keys.is_empty() {
            return Err(ArtifactError::NotFound(shown.to_owned()));
        }
        let doomed = futures_util::stream::iter(keys.into_iter().map(Ok)).boxed();
        let mut deleted = self.store.delete_stream(doomed);
        while let Some(r) = deleted.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(remote("delete", shown)(e)),
            }
        }
        Ok(())
    }
}
