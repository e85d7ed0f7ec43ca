/**
 * Activity: the operation log (one row per call, allowed or denied) and the delivery
 * events providers pushed, filterable by agent, connection, status and time; one
 * operation's page shows its request summary, attempts and events. Members see their
 * own and their agents' calls; admins the workspace's (RLS decides).
 */
import { Anchor, Button, Card, Code, Group, Select, SimpleGrid, Stack, Table, Tabs, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { Empty, ErrorAlert, PageHeader, StatusBadge } from "../components.tsx";
import { connectionLabel, useConnections } from "../lib/catalogue.ts";
import { must } from "../lib/errors.ts";
import { formatTime, localToIso, shortId } from "../lib/format.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";

const STATUSES = ["succeeded", "partial", "pending", "failed", "unknown", "denied"];
const PAGE = 100;

function useAgents(workspaceId: string) {
  const supabase = useSupabase();
  return useLoad(async () => must(await supabase.from("agents").select("id, name").eq("workspace_id", workspaceId).order("name")), [supabase, workspaceId]);
}

export function ActivityPage() {
  const supabase = useSupabase();
  const { workspace, memberLabel } = useCurrent();
  const [params, setParams] = useSearchParams();
  const agents = useAgents(workspace.id);
  const connections = useConnections(workspace.id);
  const agent = params.get("agent");
  const connection = params.get("connection");
  const status = params.get("status");
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  const [limit, setLimit] = useState(PAGE);
  const set = (key: string, value: string | null) => {
    const next = new URLSearchParams(params);
    if (value) next.set(key, value);
    else next.delete(key);
    setParams(next, { replace: true });
    setLimit(PAGE);
  };

  const operations = useLoad(async () => {
    let q = supabase
      .from("operations")
      .select("id, created_at, capability_key, status, recipient_count, agent_id, connection_id, user_id, sender, error_code, error_message, auth_mode")
      .eq("workspace_id", workspace.id);
    if (agent) q = q.eq("agent_id", agent);
    if (connection) q = q.eq("connection_id", connection);
    if (status) q = q.eq("status", status);
    const fromIso = localToIso(from);
    const toIso = localToIso(to);
    if (fromIso) q = q.gte("created_at", fromIso);
    if (toIso) q = q.lte("created_at", toIso);
    return must(await q.order("created_at", { ascending: false }).limit(limit));
  }, [supabase, workspace.id, agent, connection, status, from, to, limit]);

  const events = useLoad(async () => {
    let q = supabase
      .from("message_events")
      .select("id, received_at, event_type, status, delivery_status, recipient, provider_message_id, operation_id, connection_id, channel, user_id")
      .eq("workspace_id", workspace.id);
    if (connection) q = q.eq("connection_id", connection);
    const fromIso = localToIso(from);
    const toIso = localToIso(to);
    if (fromIso) q = q.gte("received_at", fromIso);
    if (toIso) q = q.lte("received_at", toIso);
    return must(await q.order("received_at", { ascending: false }).limit(limit));
  }, [supabase, workspace.id, connection, from, to, limit]);

  const agentName = (id: string | null) => (id ? (agents.data?.find((a) => a.id === id)?.name ?? shortId(id)) : "—");
  const connectionName = (id: string | null) => {
    const c = id ? connections.data?.find((x) => x.id === id) : undefined;
    return c ? c.name : id ? shortId(id) : "—";
  };

  return (
    <Stack>
      <PageHeader title="Activity" description="Every call agents and members made, allowed or refused, and the delivery reports and replies providers sent back." />
      <Card withBorder>
        <form aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
          <SimpleGrid cols={{ base: 1, xs: 2, md: 5 }}>
            <Select label="Agent" clearable placeholder="Any agent" data={(agents.data ?? []).map((a) => ({ value: a.id, label: a.name }))} value={agent} onChange={(v) => set("agent", v)} />
            <Select label="Connection" clearable placeholder="Any account" data={(connections.data ?? []).map((c) => ({ value: c.id, label: connectionLabel(c) }))} value={connection} onChange={(v) => set("connection", v)} />
            <Select label="Status" clearable placeholder="Any status" data={STATUSES} value={status} onChange={(v) => set("status", v)} />
            <TextInput label="From" type="datetime-local" value={from} onChange={(e) => set("from", e.currentTarget.value)} />
            <TextInput label="To" type="datetime-local" value={to} onChange={(e) => set("to", e.currentTarget.value)} />
          </SimpleGrid>
        </form>
      </Card>
      <Tabs defaultValue="operations" keepMounted={false}>
        <Tabs.List>
          <Tabs.Tab value="operations">Operations</Tabs.Tab>
          <Tabs.Tab value="events">Delivery events</Tabs.Tab>
        </Tabs.List>
        <Tabs.Panel value="operations" pt="sm">
          <ErrorAlert error={operations.error} />
          <Card withBorder>
            {operations.data?.length === 0 ? (
              <Empty>No calls match.</Empty>
            ) : (
              <Table.ScrollContainer minWidth={820}>
                <Table striped highlightOnHover aria-label="Operations">
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th>Time</Table.Th>
                      <Table.Th>Tool</Table.Th>
                      <Table.Th>Status</Table.Th>
                      <Table.Th>Agent</Table.Th>
                      <Table.Th>Member</Table.Th>
                      <Table.Th>Account</Table.Th>
                      <Table.Th>Recipients</Table.Th>
                      <Table.Th>From</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {(operations.data ?? []).map((op) => (
                      <Table.Tr key={op.id}>
                        <Table.Td>
                          <Anchor component={Link} to={`/w/${workspace.id}/activity/${op.id}`}>
                            {formatTime(op.created_at)}
                          </Anchor>
                        </Table.Td>
                        <Table.Td>{op.capability_key}</Table.Td>
                        <Table.Td>
                          <StatusBadge status={op.status} />
                          {op.error_code && (
                            <Text size="xs" c="dimmed" title={op.error_message ?? undefined}>
                              {op.error_code}
                            </Text>
                          )}
                        </Table.Td>
                        <Table.Td>{agentName(op.agent_id)}</Table.Td>
                        <Table.Td>{memberLabel(op.user_id)}</Table.Td>
                        <Table.Td>{connectionName(op.connection_id)}</Table.Td>
                        <Table.Td>{op.recipient_count}</Table.Td>
                        <Table.Td>{op.sender ?? "—"}</Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </Table.ScrollContainer>
            )}
            {operations.data?.length === limit && (
              <Group justify="center" mt="sm">
                <Button variant="default" onClick={() => setLimit((l) => l + PAGE)}>
                  Show more
                </Button>
              </Group>
            )}
          </Card>
        </Tabs.Panel>
        <Tabs.Panel value="events" pt="sm">
          <ErrorAlert error={events.error} />
          <Card withBorder>
            {events.data?.length === 0 ? (
              <Empty>No delivery events match.</Empty>
            ) : (
              <EventsTable events={events.data ?? []} workspaceId={workspace.id} connectionName={connectionName} />
            )}
          </Card>
        </Tabs.Panel>
      </Tabs>
    </Stack>
  );
}

interface EventRow {
  id: string;
  received_at: string;
  event_type: string;
  status: string | null;
  delivery_status: string | null;
  recipient: string | null;
  provider_message_id: string | null;
  operation_id: string | null;
  connection_id: string;
  channel: string | null;
}

function EventsTable({ events, workspaceId, connectionName }: { events: EventRow[]; workspaceId: string; connectionName: (id: string | null) => string }) {
  return (
    <Table.ScrollContainer minWidth={760}>
      <Table striped aria-label="Delivery events">
        <Table.Thead>
          <Table.Tr>
            <Table.Th>Received</Table.Th>
            <Table.Th>Event</Table.Th>
            <Table.Th>Delivery</Table.Th>
            <Table.Th>Recipient</Table.Th>
            <Table.Th>Account</Table.Th>
            <Table.Th>Operation</Table.Th>
          </Table.Tr>
        </Table.Thead>
        <Table.Tbody>
          {events.map((ev) => (
            <Table.Tr key={ev.id}>
              <Table.Td>{formatTime(ev.received_at)}</Table.Td>
              <Table.Td>
                {ev.event_type}
                {ev.status && (
                  <Text size="xs" c="dimmed">
                    provider: {ev.status}
                  </Text>
                )}
              </Table.Td>
              <Table.Td>
                <StatusBadge status={ev.delivery_status} />
              </Table.Td>
              <Table.Td>{ev.recipient ?? "—"}</Table.Td>
              <Table.Td>{connectionName(ev.connection_id)}</Table.Td>
              <Table.Td>
                {ev.operation_id ? (
                  <Anchor component={Link} to={`/w/${workspaceId}/activity/${ev.operation_id}`}>
                    {shortId(ev.operation_id)}
                  </Anchor>
                ) : (
                  "—"
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </Table.Tbody>
      </Table>
    </Table.ScrollContainer>
  );
}

export function OperationPage() {
  const { operationId } = useParams();
  const supabase = useSupabase();
  const { workspace, memberLabel } = useCurrent();
  const connections = useConnections(workspace.id);
  const agents = useAgents(workspace.id);
  const data = useLoad(async () => {
    const [op, attempts, events] = await Promise.all([
      supabase.from("operations").select("*").eq("id", operationId!),
      supabase.from("operation_attempts").select("*").eq("operation_id", operationId!).order("attempt"),
      supabase
        .from("message_events")
        .select("id, received_at, event_type, status, delivery_status, recipient, provider_message_id, operation_id, connection_id, channel")
        .eq("operation_id", operationId!)
        .order("received_at"),
    ]);
    return { op: must(op)[0] ?? null, attempts: must(attempts), events: must(events) };
  }, [supabase, operationId]);
  const connectionName = (id: string | null) => {
    const c = id ? connections.data?.find((x) => x.id === id) : undefined;
    return c ? connectionLabel(c) : id ? shortId(id) : "—";
  };
  const back = (
    <Anchor component={Link} to={`/w/${workspace.id}/activity`}>
      ← Activity
    </Anchor>
  );
  if (data.error) return <ErrorAlert error={data.error} />;
  if (!data.data) return null;
  const op = data.data.op;
  if (!op) {
    return (
      <Stack>
        {back}
        <PageHeader title="Operation not found" description="It does not exist or is not yours to see." />
      </Stack>
    );
  }
  const fields: [string, React.ReactNode][] = [
    ["Status", <StatusBadge key="s" status={op.status} />],
    ["Tool", op.capability_key],
    ["Time", formatTime(op.created_at)],
    ["Finished", formatTime(op.finished_at)],
    ["Duration", op.duration_ms === null ? "—" : `${op.duration_ms} ms`],
    ["Agent", op.agent_id ? (agents.data?.find((a) => a.id === op.agent_id)?.name ?? shortId(op.agent_id)) : "— (the member directly)"],
    ["Member", memberLabel(op.user_id)],
    ["Authenticated with", op.auth_mode],
    ["Account", connectionName(op.connection_id)],
    ["From", op.sender ?? "—"],
    ["Recipients", op.recipients.length ? op.recipients.join(", ") : String(op.recipient_count)],
    ["Quota", `${op.quota_used} used of ${op.quota_reserved} reserved`],
    ["Provider message ids", op.provider_message_ids.join(", ") || "—"],
    ["Idempotency key", op.idempotency_key ?? "—"],
  ];
  return (
    <Stack>
      {back}
      <PageHeader title={`${op.capability_key} · ${op.status}`} description={`Operation ${op.id}`} />
      {op.error_code && (
        <Card withBorder bg="var(--mantine-color-red-light)">
          <Text fw={600}>{op.error_code}</Text>
          <Text size="sm">{op.error_message}</Text>
        </Card>
      )}
      <Card withBorder>
        <Table variant="vertical" layout="fixed" aria-label="Operation">
          <Table.Tbody>
            {fields.map(([k, v]) => (
              <Table.Tr key={k}>
                <Table.Th w={180}>{k}</Table.Th>
                <Table.Td style={{ wordBreak: "break-word" }}>{v}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </Card>
      <Card withBorder>
        <Title order={3} size="h4" mb="xs">
          Request summary
        </Title>
        <Code block>{JSON.stringify(op.request_summary, null, 2)}</Code>
      </Card>
      <Card withBorder>
        <Title order={3} size="h4" mb="xs">
          Attempts
        </Title>
        {data.data.attempts.length === 0 ? (
          <Empty>No fail-over: the call stayed on its first account.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={560}>
            <Table aria-label="Attempts">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>#</Table.Th>
                  <Table.Th>Provider</Table.Th>
                  <Table.Th>Account</Table.Th>
                  <Table.Th>Outcome</Table.Th>
                  <Table.Th>Error</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {data.data.attempts.map((a) => (
                  <Table.Tr key={a.id}>
                    <Table.Td>{a.attempt}</Table.Td>
                    <Table.Td>{a.provider}</Table.Td>
                    <Table.Td>{connectionName(a.connection_id)}</Table.Td>
                    <Table.Td>{a.outcome}</Table.Td>
                    <Table.Td>
                      {a.error_code ?? "—"} {a.provider_status ? `(HTTP ${a.provider_status})` : ""} {a.error_message}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <Card withBorder>
        <Title order={3} size="h4" mb="xs">
          Delivery events
        </Title>
        {data.data.events.length === 0 ? <Empty>No delivery reports yet.</Empty> : <EventsTable events={data.data.events} workspaceId={workspace.id} connectionName={connectionName} />}
      </Card>
      {op.response !== null && (
        <Card withBorder>
          <Title order={3} size="h4" mb="xs">
            Result
          </Title>
          <Code block>{JSON.stringify(op.response, null, 2)}</Code>
        </Card>
      )}
    </Stack>
  );
}
