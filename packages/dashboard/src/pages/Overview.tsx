/** Overview: the workspace at a glance, invitations for you, and a new team workspace. */
import { Anchor, Button, Card, Group, SimpleGrid, Stack, Table, Text, TextInput, Title } from "@mantine/core";
import { useState } from "react";
import { Link, useNavigate } from "react-router";
import { ErrorAlert, Empty, PageHeader, StatusBadge, useAction } from "../components.tsx";
import { useMe } from "../lib/auth.tsx";
import { must } from "../lib/errors.ts";
import { formatTime, utcDay } from "../lib/format.ts";
import { useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent, useWorkspaces } from "../lib/workspace.tsx";

export function OverviewPage() {
  const supabase = useSupabase();
  const { workspace, isAdmin } = useCurrent();
  const me = useMe();
  const base = `/w/${workspace.id}`;
  const stats = useLoad(async () => {
    const count = async (q: PromiseLike<{ count: number | null; error: unknown }>) => {
      const r = await q;
      if (r.error) throw r.error;
      return r.count ?? 0;
    };
    const ws = workspace.id;
    const [connections, agents, members, today, recent] = await Promise.all([
      count(supabase.from("connections").select("id", { count: "exact", head: true }).eq("workspace_id", ws)),
      count(supabase.from("agents").select("id", { count: "exact", head: true }).eq("workspace_id", ws)),
      count(supabase.from("workspace_members").select("user_id", { count: "exact", head: true }).eq("workspace_id", ws)),
      count(supabase.from("operations").select("id", { count: "exact", head: true }).eq("workspace_id", ws).gte("created_at", `${utcDay()}T00:00:00Z`)),
      supabase
        .from("operations")
        .select("id, created_at, capability_key, status, recipient_count, error_code")
        .eq("workspace_id", ws)
        .order("created_at", { ascending: false })
        .limit(8),
    ]);
    return { connections, agents, members, today, recent: must(recent) };
  }, [supabase, workspace.id]);

  const invitations = useLoad(
    async () => must(await supabase.from("workspace_invitations").select("id, workspace_id, role, expires_at, created_at").eq("email", me.email.toLowerCase()).eq("status", "pending")),
    [supabase, me.email],
  );

  const tiles = [
    { label: "Connections", value: stats.data?.connections, to: `${base}/connections` },
    { label: "Agents", value: stats.data?.agents, to: `${base}/agents` },
    { label: "Members", value: stats.data?.members, to: `${base}/members` },
    { label: "Calls today (UTC)", value: stats.data?.today, to: `${base}/activity` },
  ];

  return (
    <Stack>
      <PageHeader
        title={workspace.name}
        description={
          workspace.personal
            ? "Your personal workspace: only you are in it."
            : `A team workspace. You are its ${workspace.role}${isAdmin ? ": you manage its accounts, members and permissions." : "."}`
        }
      />
      <ErrorAlert error={stats.error} />
      <SimpleGrid cols={{ base: 2, sm: 4 }}>
        {tiles.map((t) => (
          <Card key={t.label} withBorder component={Link} to={t.to} aria-label={`${t.label}: ${t.value ?? "…"}`}>
            <Text size="sm" c="dimmed">
              {t.label}
            </Text>
            <Text fw={700} size="xl">
              {t.value ?? "…"}
            </Text>
          </Card>
        ))}
      </SimpleGrid>

      <Card withBorder>
        <Group justify="space-between" mb="xs">
          <Title order={3} size="h4">
            Recent activity
          </Title>
          <Anchor component={Link} to={`${base}/activity`} size="sm">
            All activity
          </Anchor>
        </Group>
        {stats.data && stats.data.recent.length === 0 ? (
          <Empty>No calls yet. Agents' and members' sends appear here.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={480}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Time</Table.Th>
                  <Table.Th>Tool</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Recipients</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(stats.data?.recent ?? []).map((op) => (
                  <Table.Tr key={op.id}>
                    <Table.Td>
                      <Anchor component={Link} to={`${base}/activity/${op.id}`}>
                        {formatTime(op.created_at)}
                      </Anchor>
                    </Table.Td>
                    <Table.Td>{op.capability_key}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={op.status} /> {op.error_code && <Text span size="xs" c="dimmed">{op.error_code}</Text>}
                    </Table.Td>
                    <Table.Td>{op.recipient_count}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>

      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <JoinWorkspace pending={invitations.data?.length ?? 0} />
        <CreateWorkspace />
      </SimpleGrid>
    </Stack>
  );
}

function JoinWorkspace({ pending }: { pending: number }) {
  const supabase = useSupabase();
  const workspaces = useWorkspaces();
  const navigate = useNavigate();
  const [token, setToken] = useState("");
  const action = useAction();
  return (
    <Card withBorder>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action
            .run(async () => must(await supabase.rpc("accept_workspace_invitation", { p_token: token.trim() })) as { id: string; name: string }, "You joined the workspace")
            .then(async (joined) => {
              if (!joined) return;
              setToken("");
              await workspaces.reload();
              navigate(`/w/${joined.id}/overview`);
            });
        }}
      >
        <Stack gap="sm">
          <Title order={3} size="h4">
            Join a workspace
          </Title>
          <Text size="sm" c="dimmed">
            {pending > 0
              ? `You have ${pending} pending invitation${pending > 1 ? "s" : ""}. Paste the token the inviter gave you.`
              : "Paste the invitation token (swb_invite_…) someone sent to your e-mail address."}
          </Text>
          <TextInput label="Invitation token" required value={token} onChange={(e) => setToken(e.currentTarget.value)} autoComplete="off" />
          <ErrorAlert error={action.error} title="Could not answer the invitation" />
          <Group justify="flex-end">
            <Button
              variant="default"
              disabled={token.trim() === ""}
              loading={action.busy}
              onClick={() =>
                void action
                  .run(async () => must(await supabase.rpc("decline_workspace_invitation", { p_token: token.trim() })), "You declined the invitation")
                  .then((declined) => declined && setToken(""))}
            >
              Decline
            </Button>
            <Button type="submit" loading={action.busy}>
              Join
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

function CreateWorkspace() {
  const supabase = useSupabase();
  const workspaces = useWorkspaces();
  const navigate = useNavigate();
  const [name, setName] = useState("");
  const action = useAction();
  return (
    <Card withBorder>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void action
            .run(async () => must(await supabase.rpc("create_workspace", { p_name: name })) as { id: string }, "Workspace created")
            .then(async (created) => {
              if (!created) return;
              setName("");
              await workspaces.reload();
              navigate(`/w/${created.id}/overview`);
            });
        }}
      >
        <Stack gap="sm">
          <Title order={3} size="h4">
            New team workspace
          </Title>
          <Text size="sm" c="dimmed">
            You become its owner and can invite others.
          </Text>
          <TextInput label="Workspace name" required maxLength={100} value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <ErrorAlert error={action.error} title="Could not create the workspace" />
          <Group justify="flex-end">
            <Button type="submit" loading={action.busy}>
              Create workspace
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

