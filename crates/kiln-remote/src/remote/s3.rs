//! A remote in an S3-compatible bucket (AWS, MinIO, moto, Ceph, R2, …) through object_store,
//! keys `<prefix>/files/md5/ab/cdef…` as DVC's s3 remote lays them out. Credentials come from
//! the usual `AWS_*` variables, then the remote's options (`access_key_id`, …), which win, as
//! `endpointurl` wins over `AWS_ENDPOINT_URL`.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path as FsPath;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use kiln_cache::md5::Md5;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{BUF, content_md5, corrupt_local, hex};
use crate::RemoteError;
use crate::config::RemoteSpec;

/// Objects up to this size go up in one PUT; larger ones as a multipart upload of parts this
/// size (S3's minimum part is 5 MiB), at most [`PARTS_IN_FLIGHT`] parts at once.
const PART_BYTES: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 2;
/// Up to this many objects are asked about one HEAD each; beyond, listing the remote's
/// `files/md5/` prefix (a thousand keys a request) is cheaper, as DVC estimates.
const HEAD_LIMIT: usize = 256;

#[derive(Debug)]
pub(crate) struct Bucket {
    store: Arc<AmazonS3>,
    /// Without leading or trailing `/`; may be empty.
    prefix: String,
    /// object_store is async; the transfer's threads each `block_on` their own request here.
    rt: tokio::runtime::Runtime,
}

fn store_err(remote: &str, op: &'static str, key: &Path) -> impl FnOnce(object_store::Error) -> RemoteError {
    let (remote, key) = (remote.to_owned(), key.to_string());
    move |source| RemoteError::Store { remote, op, key, source: Box::new(source) }
}

impl Bucket {
    pub(crate) fn open(spec: &RemoteSpec, bucket: &str, prefix: String) -> Result<Self, RemoteError> {
        let fail = |message: String| RemoteError::Setup { name: spec.name.clone(), message };
        // reqwest is built without a default TLS crypto provider (see the workspace manifest):
        // install ring's once; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let opt = |k: &str| spec.options.get(k).filter(|v| !v.is_empty());
        if let Some(v) = opt("access_key_id") {
            b = b.with_access_key_id(v);
        }
        if let Some(v) = opt("secret_access_key") {
            b = b.with_secret_access_key(v);
        }
        if let Some(v) = opt("session_token") {
            b = b.with_token(v);
        }
        // from_env read both region variables in whatever order the environment lists them;
        // the option, then AWS_REGION, then AWS_DEFAULT_REGION decide, as the AWS SDKs do.
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(r) = opt("region").cloned().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION")) {
            b = b.with_region(r);
        }
        if opt("profile").is_some() {
            tracing::warn!(
                remote = spec.name,
                "the `profile` option is ignored: kiln reads credentials from AWS_* variables and the remote's options"
            );
        }
        let endpoint = opt("endpointurl").cloned().or_else(|| env("AWS_ENDPOINT_URL")).or_else(|| env("AWS_ENDPOINT"));
        if let Some(e) = &endpoint {
            b = b.with_endpoint(e);
            // A local MinIO or moto speaks plain HTTP: allowed when the endpoint says so.
            if e.starts_with("http://") {
                b = b.with_allow_http(true);
            }
        }
        let store = b.build().map_err(|e| fail(e.to_string()))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Self { store: Arc::new(store), prefix, rt })
    }

    fn key(&self, rel: &str) -> Path {
        // `rel` is an object key (hex and `/` only): nothing to escape.
        Path::from(if self.prefix.is_empty() { rel.to_owned() } else { format!("{}/{rel}", self.prefix) })
    }

    pub(crate) fn contains(&self, remote: &str, md5s: &[String], jobs: usize) -> Result<HashSet<String>, RemoteError> {
        if md5s.len() > HEAD_LIMIT {
            let base = self.key("files/md5");
            let all: HashSet<String> = self.rt.block_on(async {
                self.store
                    .list(Some(&base))
                    .map_ok(|m| {
                        // `<prefix>/files/md5/ab/cdef…` → `abcdef…`
                        let parts: Vec<&str> = m.location.as_ref().rsplitn(3, '/').collect();
                        if parts.len() == 3 { format!("{}{}", parts[1], parts[0]) } else { String::new() }
                    })
                    .try_collect()
                    .await
                    .map_err(store_err(remote, "list", &base))
            })?;
            return Ok(md5s.iter().filter(|m| all.contains(*m)).cloned().collect());
        }
        self.rt.block_on(async {
            let heads = futures_util::stream::iter(md5s.iter().map(|m| async move {
                let key = self.key(&crate::object_key(m)?);
                match self.store.head(&key).await {
                    Ok(_) => Ok(Some(m.clone())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(store_err(remote, "look up", &key)(e)),
                }
            }))
            .buffer_unordered(jobs.max(1));
            heads.try_filter_map(|m| async move { Ok(m) }).try_collect().await
        })
    }

    pub(crate) fn put(&self, remote: &str, md5: &str, rel: &str, src: &FsPath) -> Result<(), RemoteError> {
        let key = self.key(rel);
        let mut f = std::fs::File::open(src).map_err(RemoteError::io(src))?;
        let size = f.metadata().map_err(RemoteError::io(src))?.len();
        let mut h = Md5::new();
        let mut buf = vec![0u8; BUF];
        if size <= PART_BYTES as u64 {
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            f.read_to_end(&mut data).map_err(RemoteError::io(src))?;
            h.update(&data);
            if hex(h) != content_md5(md5) {
                return Err(corrupt_local(md5, src));
            }
            let payload = PutPayload::from(Bytes::from(data));
            return self.rt.block_on(async {
                self.store.put(&key, payload).await.map(drop).map_err(store_err(remote, "upload", &key))
            });
        }
        self.rt.block_on(async {
            let upload =
                self.store.put_multipart(&key).await.map_err(store_err(remote, "start the upload of", &key))?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
            let streamed = async {
                loop {
                    // A local read on this (the transfer's) thread: `block_on` runs the future
                    // here, not on the runtime's workers.
                    let n = f.read(&mut buf).map_err(RemoteError::io(src))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                    w.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(store_err(remote, "upload", &key))?;
                    w.put(Bytes::copy_from_slice(&buf[..n]));
                }
                if hex(h) != content_md5(md5) {
                    return Err(corrupt_local(md5, src));
                }
                Ok(())
            }
            .await;
            match streamed {
                // Until `finish` completes the upload, no object exists under the key.
                Ok(()) => w.finish().await.map(drop).map_err(store_err(remote, "finish the upload of", &key)),
                Err(e) => {
                    if let Err(abort) = w.abort().await {
                        tracing::warn!(error = %abort, key = %key, "cannot abort a failed multipart upload");
                    }
                    Err(e)
                }
            }
        })
    }

    /// `Ok(false)` when the object is not there.
    pub(crate) fn get(&self, remote: &str, rel: &str, dest: &mut dyn Write) -> Result<bool, RemoteError> {
        let key = self.key(rel);
        self.rt.block_on(async {
            let r = match self.store.get(&key).await {
                Ok(r) => r,
                Err(object_store::Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(store_err(remote, "download", &key)(e)),
            };
            let mut stream = r.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(store_err(remote, "download", &key))?;
                dest.write_all(&chunk).map_err(RemoteError::io(FsPath::new(key.as_ref())))?;
            }
            Ok(true)
        })
    }
}
