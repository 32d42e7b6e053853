//! Listings: a paginated stream of API models printed as a table, or as one
//! JSON array written element by element (memory stays flat however long the
//! listing is).

use futures::{Stream, StreamExt};
use serde::Serialize;

use super::session::map_error;
use crate::error::{CliError, Result};
use crate::output::{Output, Table};

/// Prints up to `limit` items of `items`: a table built by `table`, or with
/// `--json` a JSON array (one element per line).
pub(crate) async fn print<T, S>(
    items: S,
    limit: Option<usize>,
    output: &Output,
    table: impl Fn(&[T]) -> Table,
) -> Result<()>
where
    T: Serialize,
    S: Stream<Item = rf_batch::Result<T>>,
{
    let limit = limit.unwrap_or(usize::MAX);
    let mut items = std::pin::pin!(items.take(limit));
    if output.is_json() {
        let mut first = true;
        output.stdout_raw("[")?;
        while let Some(item) = items.next().await {
            let item = item.map_err(|e| map_error(&e))?;
            let text = serde_json::to_string(&item)
                .map_err(|e| CliError::local(format!("could not encode json: {e}")))?;
            output.stdout_raw(if first { "\n" } else { ",\n" })?;
            output.stdout_raw(&text)?;
            first = false;
        }
        output.stdout_raw("\n]\n")
    } else {
        let mut all = Vec::new();
        while let Some(item) = items.next().await {
            all.push(item.map_err(|e| map_error(&e))?);
        }
        output.table(&table(&all))
    }
}

/// Prints a list already in memory, like [`print()`].
pub(crate) fn print_all<T: Serialize>(
    items: &[T],
    output: &Output,
    table: impl Fn(&[T]) -> Table,
) -> Result<()> {
    if output.is_json() {
        output.document(items)
    } else {
        output.table(&table(items))
    }
}
