use anyhow::Result;
use tributary_tests::{Devstack, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_round_trip_in_a_transaction() -> Result<()> {
    let stack = Devstack::shared()?;
    let mut pg = stack.postgres().await?;
    let table = unique_name("smoke").replace('-', "_");
    pg.batch_execute(&format!(
        "CREATE TABLE {table} (id bigint PRIMARY KEY, name text NOT NULL, amount numeric(10,2))"
    ))
    .await?;
    let tx = pg.transaction().await?;
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {table} (id, name, amount) VALUES ($1, $2, $3::text::numeric)"
        ))
        .await?;
    for i in 0..1000i64 {
        tx.execute(&insert, &[&i, &format!("row-{i}"), &format!("{i}.25")])
            .await?;
    }
    tx.commit().await?;

    let row = pg
        .query_one(
            &format!("SELECT count(*), sum(id)::text, sum(amount)::text, max(name) FROM {table}"),
            &[],
        )
        .await?;
    assert_eq!(row.get::<_, i64>(0), 1000);
    assert_eq!(row.get::<_, String>(1), "499500");
    assert_eq!(row.get::<_, String>(2), "499750.00");
    assert_eq!(row.get::<_, String>(3), "row-999");

    // A rolled-back transaction leaves nothing behind.
    let tx = pg.transaction().await?;
    tx.execute(&format!("DELETE FROM {table}"), &[]).await?;
    tx.rollback().await?;
    let count: i64 = pg
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    assert_eq!(count, 1000);

    let version: String = pg.query_one("SHOW server_version", &[]).await?.get(0);
    assert!(version.starts_with("15"), "server_version {version}");
    Ok(())
}
