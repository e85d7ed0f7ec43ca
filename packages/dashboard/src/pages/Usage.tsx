/**
 * Usage: messages sent per day per agent and per account (from the operation log), and
 * each grant's and member permission's counters against their limits (usage_counters,
 * the same counters the quota check reserves on). Days are UTC days.
 */
import { BarChart } from "@mantine/charts";
import { Card, Group, Progress, SegmentedControl, Select, Stack, Table, Text, Title } from "@mantine/core";
import { useMemo, useState } from "react";
import { Empty, ErrorAlert, PageHeader } from "../components.tsx";
import { connectionLabel, useConnections } from "../lib/catalogue.ts";
import { must } from "../lib/errors.ts";
import { formatDay, limitText, utcDay } from "../lib/format.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";

const COLORS = ["indigo.6", "teal.6", "orange.6", "grape.6", "cyan.6", "pink.6", "lime.7", "yellow.6", "red.6", "blue.6"];

function days(n: number): string[] {
  const out: string[] = [];
  const today = new Date(`${utcDay()}T00:00:00Z`).getTime();
  for (let i = n - 1; i >= 0; i--) out.push(new Date(today - i * 86_400_000).toISOString().slice(0, 10));
  return out;
}

export function UsagePage() {
  const supabase = useSupabase();
  const { workspace, memberLabel } = useCurrent();
  const [range, setRange] = useState("14");
  const span = days(Number(range));
  const since = span[0]!;
  const connections = useConnections(workspace.id);
  const data = useLoad(async () => {
    const [ops, agents, grants, perms, counters] = await Promise.all([
      supabase
        .from("operations")
        .select("created_at, agent_id, connection_id, quota_used, status")
        .eq("workspace_id", workspace.id)
        .gte("created_at", `${since}T00:00:00Z`)
        .gt("quota_used", 0)
        .order("created_at")
        .limit(1000),
      supabase.from("agents").select("id, name").eq("workspace_id", workspace.id),
      supabase.from("agent_permissions").select("id, agent_id, connection_id, daily_send_limit, monthly_send_limit, is_active").eq("workspace_id", workspace.id),
      supabase.from("member_permissions").select("id, user_id, connection_id, daily_send_limit, monthly_send_limit").eq("workspace_id", workspace.id),
      supabase.from("usage_counters").select("*").eq("workspace_id", workspace.id).gte("period_start", `${since.slice(0, 7)}-01`),
    ]);
    return { ops: must(ops), agents: must(agents), grants: must(grants), perms: must(perms), counters: must(counters) };
  }, [supabase, workspace.id, since]);

  const connectionName = (id: string | null) => {
    const c = id ? connections.data?.find((x) => x.id === id) : undefined;
    return c ? c.name : "other account";
  };
  const agentName = (id: string | null) => (id ? (data.data?.agents.find((a) => a.id === id)?.name ?? "removed agent") : "members directly");

  const chart = (key: (op: { agent_id: string | null; connection_id: string | null }) => string) => {
    const series = new Set<string>();
    const rows = span.map((day) => ({ day: formatDay(day), key: day }) as Record<string, string | number>);
    const byDay = new Map(rows.map((r) => [r.key as string, r]));
    for (const op of data.data?.ops ?? []) {
      const row = byDay.get(op.created_at.slice(0, 10));
      if (!row) continue;
      const name = key(op);
      series.add(name);
      row[name] = ((row[name] as number | undefined) ?? 0) + op.quota_used;
    }
    return { rows, series: [...series].map((name, i) => ({ name, color: COLORS[i % COLORS.length]! })) };
  };
  const perAgent = chart((op) => agentName(op.agent_id));
  const perConnection = chart((op) => connectionName(op.connection_id));

  return (
    <Stack>
      <PageHeader
        title="Usage"
        description="Messages sent per UTC day (a message is one recipient), and every limit's counter today and this month."
        actions={<SegmentedControl aria-label="Range" data={[{ value: "7", label: "7 days" }, { value: "14", label: "14 days" }, { value: "30", label: "30 days" }]} value={range} onChange={setRange} />}
      />
      <ErrorAlert error={data.error ?? connections.error} />
      <Card withBorder>
        <Title order={3} size="h4" mb="sm">
          Sent per day, by agent
        </Title>
        {perAgent.series.length === 0 ? (
          <Empty>Nothing sent in this period.</Empty>
        ) : (
          <BarChart h={260} data={perAgent.rows} dataKey="day" type="stacked" series={perAgent.series} withLegend yAxisProps={{ allowDecimals: false }} aria-label="Messages sent per day by agent" />
        )}
      </Card>
      <Card withBorder>
        <Title order={3} size="h4" mb="sm">
          Sent per day, by account
        </Title>
        {perConnection.series.length === 0 ? (
          <Empty>Nothing sent in this period.</Empty>
        ) : (
          <BarChart h={260} data={perConnection.rows} dataKey="day" type="stacked" series={perConnection.series} withLegend yAxisProps={{ allowDecimals: false }} aria-label="Messages sent per day by account" />
        )}
      </Card>
      {data.data && (
        <Limits
          span={span}
          counters={data.data.counters}
          subjects={[
            ...data.data.grants.map((g) => ({
              id: g.id,
              kind: "grant" as const,
              label: `${agentName(g.agent_id)} on ${connectionName(g.connection_id)}`,
              daily: g.daily_send_limit,
              monthly: g.monthly_send_limit,
            })),
            ...data.data.perms.map((p) => ({
              id: p.id,
              kind: "member" as const,
              label: `${memberLabel(p.user_id)} on ${connectionName(p.connection_id)}`,
              daily: p.daily_send_limit,
              monthly: p.monthly_send_limit,
            })),
          ]}
          connectionsKnown={(connections.data ?? []).map(connectionLabel)}
        />
      )}
    </Stack>
  );
}

interface Subject {
  id: string;
  kind: "grant" | "member";
  label: string;
  daily: number | null;
  monthly: number | null;
}

function Limits({ span, counters, subjects }: { span: string[]; counters: { subject_id: string; period: string; period_start: string; used: number }[]; subjects: Subject[]; connectionsKnown: string[] }) {
  const today = utcDay();
  const month = `${today.slice(0, 7)}-01`;
  const used = (id: string, period: string, start: string) => counters.find((c) => c.subject_id === id && c.period === period && c.period_start === start)?.used ?? 0;
  const [selected, setSelected] = useState<string | null>(null);
  const subject = subjects.find((s) => s.id === selected) ?? subjects[0];
  const history = useMemo(
    () => (subject ? span.map((day) => ({ day: formatDay(day), used: used(subject.id, "day", day) })) : []),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [subject, span.join(), counters],
  );
  const bar = (value: number, limit: number | null) =>
    limit === null ? <Text size="xs">{value} (no limit)</Text> : (
      <div>
        <Text size="xs">
          {value} of {limit}
        </Text>
        <Progress value={limit === 0 ? 100 : Math.min(100, (value / limit) * 100)} color={value >= (limit ?? Infinity) ? "red" : "indigo"} aria-label={`${value} of ${limit}`} />
      </div>
    );
  return (
    <>
      <Card withBorder>
        <Title order={3} size="h4" mb="xs">
          Limits today and this month
        </Title>
        <Text size="xs" c="dimmed" mb="xs">
          An agent's send counts against its grant and against its member's permission; the tighter limit refuses first.
        </Text>
        {subjects.length === 0 ? (
          <Empty>No grants or member permissions with counters.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={560}>
            <Table aria-label="Limits">
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Grant or permission</Table.Th>
                  <Table.Th>Today (limit {"/"} day)</Table.Th>
                  <Table.Th>This month</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {subjects.map((s) => (
                  <Table.Tr key={s.id}>
                    <Table.Td>
                      {s.label}
                      <Text size="xs" c="dimmed">
                        {s.kind === "grant" ? "agent grant" : "member permission"}
                      </Text>
                    </Table.Td>
                    <Table.Td w="30%">{bar(used(s.id, "day", today), s.daily)}</Table.Td>
                    <Table.Td w="30%">{bar(used(s.id, "month", month), s.monthly)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      {subject && (
        <Card withBorder>
          <Group justify="space-between" mb="sm" wrap="wrap">
            <Title order={3} size="h4">
              Per day against the daily limit
            </Title>
            <Select
              aria-label="Grant or permission"
              data={subjects.map((s) => ({ value: s.id, label: s.label }))}
              value={subject.id}
              onChange={setSelected}
              allowDeselect={false}
              w={320}
            />
          </Group>
          <BarChart
            h={240}
            data={history}
            dataKey="day"
            series={[{ name: "used", label: "Sent", color: "indigo.6" }]}
            referenceLines={subject.daily === null ? [] : [{ y: subject.daily, label: `Daily limit ${limitText(subject.daily)}`, color: "red.6" }]}
            yAxisProps={{ allowDecimals: false, domain: [0, (max: number) => Math.max(max, subject.daily ?? 0)] }}
            aria-label="Sent per day against the daily limit"
          />
        </Card>
      )}
    </>
  );
}
