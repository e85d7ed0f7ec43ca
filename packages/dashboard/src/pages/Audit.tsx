/** The audit trail: administrative actions with actor, role, target and client (admins only). */
import { Alert, Button, Card, Code, Group, Select, Stack, Table, Text } from "@mantine/core";
import { useState } from "react";
import { Empty, ErrorAlert, PageHeader } from "../components.tsx";
import { must } from "../lib/errors.ts";
import { formatTime, shortId } from "../lib/format.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";

const PAGE = 100;

export function AuditPage() {
  const supabase = useSupabase();
  const { workspace, isAdmin, memberLabel } = useCurrent();
  const [action, setAction] = useState<string | null>(null);
  const [limit, setLimit] = useState(PAGE);
  const events = useLoad(async () => {
    if (!isAdmin) return [];
    let q = supabase.from("audit_events").select("*").eq("workspace_id", workspace.id);
    if (action) q = q.eq("action", action);
    return must(await q.order("created_at", { ascending: false }).limit(limit));
  }, [supabase, workspace.id, isAdmin, action, limit]);
  const actions = useLoad(
    async () => (isAdmin ? [...new Set(must(await supabase.from("audit_events").select("action").eq("workspace_id", workspace.id)).map((e) => e.action))].sort() : []),
    [supabase, workspace.id, isAdmin],
  );

  if (!isAdmin) {
    return (
      <Stack>
        <PageHeader title="Audit" />
        <Alert color="blue">Only the workspace's owner and admins read its audit trail.</Alert>
      </Stack>
    );
  }
  return (
    <Stack>
      <PageHeader title="Audit" description="Administrative actions in this workspace: who did what, when, and from where. Append-only." />
      <Group>
        <Select label="Action" placeholder="Any action" clearable data={actions.data ?? []} value={action} onChange={setAction} w={260} />
      </Group>
      <ErrorAlert error={events.error} />
      <Card withBorder>
        {events.data?.length === 0 ? (
          <Empty>No events.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={760}>
            <Table striped aria-label="Audit events">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Time</Table.Th>
                  <Table.Th>Action</Table.Th>
                  <Table.Th>Actor</Table.Th>
                  <Table.Th>Target</Table.Th>
                  <Table.Th>Details</Table.Th>
                  <Table.Th>Client</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(events.data ?? []).map((e) => (
                  <Table.Tr key={e.id}>
                    <Table.Td>{formatTime(e.created_at)}</Table.Td>
                    <Table.Td>
                      <Code>{e.action}</Code>
                    </Table.Td>
                    <Table.Td>
                      {memberLabel(e.actor_user_id)}
                      <Text size="xs" c="dimmed">
                        {e.actor_role}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      {e.target_type} {shortId(e.target_id)}
                    </Table.Td>
                    <Table.Td>
                      <Text size="xs" ff="monospace" style={{ wordBreak: "break-word" }}>
                        {JSON.stringify(e.details)}
                      </Text>
                    </Table.Td>
                    <Table.Td>
                      <Text size="xs">{e.ip ? String(e.ip) : "—"}</Text>
                      <Text size="xs" c="dimmed" lineClamp={1} title={e.user_agent ?? undefined}>
                        {e.user_agent ?? ""}
                      </Text>
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
        {events.data?.length === limit && (
          <Group justify="center" mt="sm">
            <Button variant="default" onClick={() => setLimit((l) => l + PAGE)}>
              Show more
            </Button>
          </Group>
        )}
      </Card>
    </Stack>
  );
}
