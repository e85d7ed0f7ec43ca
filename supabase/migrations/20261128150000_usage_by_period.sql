/**
 * ==== A workspace's usage by period ====
 * The dashboard's usage page reads a workspace's counters since the start of a month. The
 * index on workspace_id alone found them among every counter the workspace ever had, one
 * row per subject and day of use; an index on (workspace_id, period_start) reads only the
 * period asked for, and serves the foreign key to workspaces as well.
 */

-- ---- Section - Usage counters ----

create index usage_counters_workspace_id_period_start_idx on public.usage_counters (workspace_id, period_start);
drop index public.usage_counters_workspace_id_idx;
