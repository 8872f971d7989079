//! Signed RPC on [`PeernsNode`] (decision 0014): grants to Full Access contacts, the audit log,
//! serving chosen folders, arming the camera and calling another device (backups are in
//! `backup.rs`).

use std::time::Duration;

use peerns_core::node;

use crate::{PeernsError, PeernsNode, on_runtime};

/// A folder served under `/name`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RpcRoot {
    /// Request paths `/name/...` map into the folder.
    pub name: String,
    /// The folder.
    pub dir: String,
    /// Most bytes the files under it may take (writes beyond are refused with 413).
    #[uniffi(default = None)]
    pub quota: Option<u64>,
}

/// A sound alert a watched monitor sent (`monitor_alerts`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecentMonitorAlert {
    /// The monitor's fingerprint.
    pub fingerprint: String,
    /// The level it heard, dBFS.
    pub level_dbfs: i16,
    /// When it arrived, Unix ms.
    pub at_ms: u64,
}

impl From<node::MonitorAlertSeen> for RecentMonitorAlert {
    fn from(a: node::MonitorAlertSeen) -> Self {
        Self {
            fingerprint: a.fingerprint,
            level_dbfs: a.level_dbfs,
            at_ms: a.at_ms,
        }
    }
}

/// One granted scope.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RpcGrant {
    /// The contact.
    pub fingerprint: String,
    /// The scope, `category:action:resource`, e.g. `sys:status:battery` (paths may end in a glob).
    pub scope: String,
}

/// One request served (code 200) or refused.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RpcAuditEntry {
    /// When, Unix ms.
    pub at_ms: u64,
    /// Who asked.
    pub fingerprint: String,
    /// The method.
    pub method: String,
    /// What it named.
    pub target: String,
    /// 200 or the error code.
    pub code: u16,
    /// The error message, or empty.
    pub message: String,
}

#[uniffi::export(async_runtime = "tokio")]
impl PeernsNode {
    /// Grants scopes to a contact at trust 3 (Full Access); refused for any other level.
    pub async fn rpc_grant(
        &self,
        fingerprint: String,
        scopes: Vec<String>,
    ) -> Result<(), PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.rpc_grant(&fingerprint, &scopes).await }).await??)
    }

    /// Revokes scopes of a contact (all of them if `scopes` is empty); returns how many.
    pub async fn rpc_revoke(
        &self,
        fingerprint: String,
        scopes: Vec<String>,
    ) -> Result<u64, PeernsError> {
        let node = self.running()?;
        Ok(on_runtime(async move { node.rpc_revoke(&fingerprint, &scopes).await }).await??)
    }

    /// Every grant.
    pub async fn rpc_grants(&self) -> Result<Vec<RpcGrant>, PeernsError> {
        let node = self.running()?;
        let grants = on_runtime(async move { node.rpc_grants().await }).await??;
        Ok(grants
            .into_iter()
            .map(|g| RpcGrant {
                fingerprint: g.fingerprint,
                scope: g.scope,
            })
            .collect())
    }

    /// The newest `limit` audit entries, oldest first.
    pub async fn rpc_audit_log(&self, limit: u32) -> Result<Vec<RpcAuditEntry>, PeernsError> {
        let node = self.running()?;
        let log = on_runtime(async move { node.rpc_audit_log(limit as usize).await }).await??;
        Ok(log
            .into_iter()
            .map(|e| RpcAuditEntry {
                at_ms: e.at_ms,
                fingerprint: e.fingerprint,
                method: e.method,
                target: e.target,
                code: e.code,
                message: e.message,
            })
            .collect())
    }

    /// Serves these folders to contacts at trust 3, within their grants.
    pub fn rpc_serve(&self, roots: Vec<RpcRoot>) -> Result<(), PeernsError> {
        let node = self.running()?;
        let quotas = roots
            .iter()
            .filter_map(|r| r.quota.map(|q| (r.name.clone(), q)))
            .collect();
        Ok(node.rpc_serve(node::ServeConfig {
            roots: roots.into_iter().map(|r| (r.name, r.dir.into())).collect(),
            max_file: 0,
            quotas,
        })?)
    }

    /// Arms the camera (`environment` or `user`: `media.stream` may start it) or disarms it.
    pub fn rpc_arm_camera(&self, facing: Option<String>) -> Result<(), PeernsError> {
        let node = self.running()?;
        // Arming starts a task on the library's runtime.
        let _runtime = crate::RUNTIME.enter();
        Ok(node.rpc_arm_camera(facing.as_deref())?)
    }

    /// The baby monitor's viewer: asks armed contact `fingerprint` for its `facing` camera
    /// (`environment` or `user`) and answers the call it places back (sending nothing);
    /// returns the call, whose picture and sound come like any call's (`call_media_sinks`).
    /// A second watch of the same contact replaces this one, which fails with `Cancelled`; a
    /// watch cancelled once the call came declines it.
    pub async fn rpc_watch(
        &self,
        fingerprint: String,
        facing: String,
        timeout_ms: u64,
    ) -> Result<String, PeernsError> {
        let node = self.running()?;
        let timeout = Duration::from_millis(timeout_ms);
        Ok(
            on_runtime(async move { node.rpc_watch(&fingerprint, &facing, timeout).await })
                .await??,
        )
    }

    /// Turns the armed camera's sound alert on (`threshold_dbfs`, -120 to 0) or off (`None`):
    /// contacts allowed to watch get a `MonitorAlert` event when the levels reported with
    /// `rpc_sound_level` stay at or above it for 300 ms (then 30 s of quiet).
    pub fn rpc_sound_alert(&self, threshold_dbfs: Option<f32>) -> Result<(), PeernsError> {
        Ok(self.running()?.rpc_sound_alert(threshold_dbfs)?)
    }

    /// The sound alerts of monitors we watch taken since the node started, oldest first (the
    /// last 20): what a monitor screen opened from an alert's notification shows.
    pub fn monitor_alerts(&self) -> Result<Vec<RecentMonitorAlert>, PeernsError> {
        Ok(self
            .running()?
            .monitor_alerts()
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// The microphone's level now, in dBFS, while the camera is armed (a few times a second).
    pub fn rpc_sound_level(&self, dbfs: f32) -> Result<(), PeernsError> {
        let node = self.running()?;
        // An alert is sent by a task on the library's runtime.
        let _runtime = crate::RUNTIME.enter();
        node.rpc_sound_level(dbfs);
        Ok(())
    }

    /// Signs `method(params_json)` for contact `fingerprint` and returns its `RPC_RES` as JSON.
    pub async fn rpc_call(
        &self,
        fingerprint: String,
        method: String,
        params_json: String,
        timeout_ms: u64,
    ) -> Result<String, PeernsError> {
        let node = self.running()?;
        let params = serde_json::from_str(&params_json).map_err(|e| PeernsError::InvalidInput {
            msg: format!("params: {e}"),
        })?;
        let res = on_runtime(async move {
            node.rpc_call(
                &fingerprint,
                &method,
                params,
                Duration::from_millis(timeout_ms),
            )
            .await
        })
        .await??;
        Ok(res.to_json().to_string())
    }
}
