//! The database scenarios of the Python `lock-hog` guide, in Rust: a PostgreSQL
//! transaction-level advisory lock held from another transaction (pay an individual once), and
//! a Redis lock held from another process. They run against the servers `scripts/test` starts;
//! without one they fail under `CI=true` and are skipped with a reason otherwise.

/// The server URL in `var`; `None` (with the reason printed) when unset, a panic under CI.
#[allow(dead_code)]
fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true and {var} is not set: scripts/test starts the server")
        }
        _ => {
            eprintln!("skipped: {var} is not set; run through scripts/test");
            None
        }
    }
}

#[cfg(feature = "postgres")]
mod pay_once_on_postgres {
    use lockhog::backend::postgres::{advisory_key, try_xact_lock};
    use lockhog::hog::{async_hog_lock, AsyncLockHogger};
    use lockhog::BoxError;
    use tokio_postgres::{Client, NoTls};

    const NAMESPACE: &str = "payments";

    // --- the code under test -------------------------------------------------------------

    #[derive(Debug, PartialEq)]
    enum PayError {
        AlreadyPaying,
        Database(String),
    }

    /// Pays `person` once: the payment runs in a transaction that holds the person's
    /// transaction-level advisory lock, and a second payment at the same time is refused.
    async fn pay_individual(client: &mut Client, person: &str) -> Result<&'static str, PayError> {
        let db = |e: tokio_postgres::Error| PayError::Database(e.to_string());
        let tx = client.transaction().await.map_err(db)?;
        match try_xact_lock(&tx, NAMESPACE, person).await {
            Ok(()) => {}
            Err(lockhog::Error::Contended { .. }) => return Err(PayError::AlreadyPaying),
            Err(e) => return Err(PayError::Database(e.to_string())),
        }
        // ... record the payment ...
        tx.commit().await.map_err(db)?;
        Ok("paid")
    }

    // --- its test ------------------------------------------------------------------------

    /// Holds the person's lock the way another payment would: inside an open transaction on
    /// a connection of its own, until told to roll back.
    struct OtherPayment {
        url: String,
        person: String,
    }

    impl AsyncLockHogger for OtherPayment {
        type Guard = Client;

        async fn acquire_lock(&mut self) -> Result<Client, BoxError> {
            let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
            tokio::spawn(connection);
            client.batch_execute("BEGIN").await?;
            let key = advisory_key(NAMESPACE, &self.person)?;
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                .await?;
            Ok(client)
        }

        async fn release_lock(&mut self, client: Client) -> Result<(), BoxError> {
            client.batch_execute("ROLLBACK").await?;
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_second_payment_is_refused_while_one_is_in_progress() {
        let Some(url) = super::server_url("LOCKHOG_TEST_POSTGRES_URL") else {
            return;
        };
        let person = format!("person-{}", std::process::id());
        let (mut client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);

        let hog = async_hog_lock(OtherPayment {
            url: url.clone(),
            person: person.clone(),
        })
        .await
        .expect("the other payment holds the lock");
        assert_eq!(
            pay_individual(&mut client, &person).await,
            Err(PayError::AlreadyPaying)
        );
        hog.release().await.expect("the other payment rolls back");
        assert_eq!(pay_individual(&mut client, &person).await, Ok("paid"));
    }
}

#[cfg(feature = "redis")]
mod refresh_once_on_redis {
    use lockhog::hog::NamedLock;
    use lockhog::Locker;

    // --- the code under test -------------------------------------------------------------

    #[derive(Debug, PartialEq)]
    enum RefreshError {
        AlreadyRefreshing,
        Lock(String),
    }

    /// Refreshes the shared API token, once across the whole fleet: whoever finds the lock
    /// taken leaves the refresh to its holder.
    async fn refresh_token(locker: &Locker) -> Result<&'static str, RefreshError> {
        let guard = match locker.lock("refresh-api-token").try_acquire().await {
            Ok(g) => g,
            Err(e) if e.is_not_acquired() => return Err(RefreshError::AlreadyRefreshing),
            Err(e) => return Err(RefreshError::Lock(e.to_string())),
        };
        // ... fetch and store the new token, passing guard.fencing_token() along ...
        guard
            .release()
            .await
            .map_err(|e| RefreshError::Lock(e.to_string()))?;
        Ok("refreshed")
    }

    // --- its test ------------------------------------------------------------------------

    #[tokio::test]
    async fn a_refresh_is_skipped_while_another_refresher_holds_the_lock() {
        let Some(url) = super::server_url("LOCKHOG_TEST_REDIS_URL") else {
            return;
        };
        let locker = Locker::connect(&url).await.unwrap();

        // Another machine's refresher, played by a hog with a Redis connection of its own.
        let hog = NamedLock::new(url.clone(), "refresh-api-token")
            .hog_async()
            .await
            .expect("the other process holds the lock");
        assert_eq!(
            refresh_token(&locker).await,
            Err(RefreshError::AlreadyRefreshing)
        );
        hog.release().await.expect("the other process releases");
        assert_eq!(refresh_token(&locker).await, Ok("refreshed"));
    }
}
