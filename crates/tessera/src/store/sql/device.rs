operations! {
    /// Stores a new device request; `false` (nothing stored) when its user code is taken by a
    /// request that has not expired yet, so the caller draws another.
    pub async fn insert_device(&self, device: &DeviceRecord) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        // An expired request's user code may be drawn again before housekeeping removes it.
        sqlx::query("DELETE FROM device_codes WHERE user_code = $1 AND expires_at <= $2")
            .bind(&device.user_code)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        let stored = sqlx::query(
            "INSERT INTO device_codes (id, user_code, client_id, grant_json, status, created_at, expires_at, \
             poll_interval, last_polled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (user_code) DO NOTHING",
        )
        .bind(&device.id)
        .bind(&device.user_code)
        .bind(&device.grant.client_id)
        .bind(to_json(&device.grant)?)
        .bind(device.status.as_str())
        .bind(device.created_at)
        .bind(device.expires_at)
        .bind(device.interval)
        .bind(device.last_polled_at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(stored == 1)
    }

    /// The pending, unexpired device request whose user code hashes to `user_code`.
    pub async fn pending_device(&self, user_code: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM device_codes WHERE user_code = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(user_code)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| device_from_row(&r)).transpose()
    }

    /// A person's answer to pending device request `id`: allowed (with who they are and when
    /// they signed in, and the scopes they allowed) or denied (`None`). `false` when the request
    /// is no longer pending (answered on another screen, or expired): nothing changed.
    pub async fn decide_device(
        &self,
        id: &str,
        allowed: Option<(&str, i64, &[String])>,
    ) -> Result<bool, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query(
            "SELECT * FROM device_codes WHERE id = $1 AND status = 'pending' AND expires_at > $2",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(false);
        };
        let mut device = device_from_row(&row)?;
        let status = match allowed {
            Some((user_id, auth_time, scope)) => {
                device.grant.user_id = user_id.to_string();
                device.grant.auth_time = auth_time;
                device.grant.scope = scope.to_vec();
                DeviceStatus::Approved
            }
            None => DeviceStatus::Denied,
        };
        let answered = sqlx::query(
            "UPDATE device_codes SET status = $1, grant_json = $2 WHERE id = $3 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(to_json(&device.grant)?)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(answered == 1)
    }

    /// A poll of device request `id` by `client_id` (RFC 8628 §3.4), under the write lock, so
    /// that of any number of nodes exactly one answers an approved request with tokens. A poll
    /// sooner than `interval - slack` seconds after the last one is answered `slow_down` and
    /// adds to the interval (§3.5), whatever the request's status (but spent). An approved
    /// request that `matches` the poll is spent here (one that does not changes nothing:
    /// [`Poll::Refused`]); `refresh` may return the first refresh token of its family, stored in the same
    /// transaction.
    pub async fn poll_device(
        &self,
        id: &str,
        client_id: &str,
        slack: i64,
        matches: impl FnOnce(&Grant) -> bool,
        refresh: impl FnOnce(&Grant) -> Option<RefreshRecord>,
    ) -> Result<Poll, StoreError> {
        let (mut tx, _write) = self.begin_write().await?;
        let Some(row) = sqlx::query("SELECT * FROM device_codes WHERE id = $1 AND client_id = $2")
            .bind(id)
            .bind(client_id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(Poll::Unknown);
        };
        let device = device_from_row(&row)?;
        let t = now();
        // A spent code is not a poll: it is answered at once, paced or not.
        if device.status == DeviceStatus::Issued {
            return Ok(Poll::Spent);
        }
        if device.expires_at <= t {
            return Ok(Poll::Expired);
        }
        if device
            .last_polled_at
            .is_some_and(|last| t < last + device.interval - slack)
        {
            let interval = (device.interval + crate::model::device::SLOW_DOWN_STEP)
                .min(crate::model::device::MAX_INTERVAL);
            sqlx::query("UPDATE device_codes SET poll_interval = $1, last_polled_at = $2 WHERE id = $3")
                .bind(interval)
                .bind(t)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(Poll::SlowDown(interval));
        }
        // What the person allowed is checked against the request (the client as it is now):
        // if it cannot be honoured, nothing changes, and the code is not spent.
        if device.status == DeviceStatus::Approved && !matches(&device.grant) {
            return Ok(Poll::Refused);
        }
        let next = if device.status == DeviceStatus::Approved {
            DeviceStatus::Issued
        } else {
            device.status
        };
        sqlx::query("UPDATE device_codes SET last_polled_at = $1, status = $2 WHERE id = $3")
            .bind(t)
            .bind(next.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let answer = match device.status {
            DeviceStatus::Pending => Poll::Pending,
            DeviceStatus::Denied => Poll::Denied,
            DeviceStatus::Issued => Poll::Spent,
            DeviceStatus::Approved => {
                if let Some(first) = refresh(&device.grant) {
                    insert_refresh_row(&mut tx, &first).await?;
                }
                Poll::Approved(device.grant)
            }
        };
        tx.commit().await?;
        Ok(answer)
    }
}

fn device_from_row(r: &DbRow) -> Result<DeviceRecord, StoreError> {
    let status: String = r.try_get("status")?;
    Ok(DeviceRecord {
        id: r.try_get("id")?,
        user_code: r.try_get("user_code")?,
        grant: from_json(r.try_get("grant_json")?)?,
        status: DeviceStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("device request status {status:?}")))?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        interval: r.try_get("poll_interval")?,
        last_polled_at: r.try_get("last_polled_at")?,
    })
}
