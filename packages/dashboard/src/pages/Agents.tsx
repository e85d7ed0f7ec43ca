/**
 * Agents: each acts for one member and never gets more than that member holds. An
 * agent's page lists its grants (scopes, daily and monthly limits, recipients per
 * message, allowed and blocked recipients, expiry) and its keys: an issued key is shown
 * exactly once, with a copy button, and can be revoked.
 */
import { Alert, Anchor, Badge, Button, Card, Group, Modal, MultiSelect, NumberInput, Select, Stack, Switch, Table, TagsInput, Text, Textarea, TextInput, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ConfirmButton, CopyField, Empty, ErrorAlert, PageHeader, StatusBadge, useAction } from "../components.tsx";
import { connectionLabel, useConnections } from "../lib/catalogue.ts";
import { must } from "../lib/errors.ts";
import { formatTime, isoToLocal, limitText, localToIso } from "../lib/format.ts";
import { useSupabase, type Row } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";
import { useMe } from "../lib/auth.tsx";

export function AgentsPage() {
  const supabase = useSupabase();
  const { workspace, memberLabel } = useCurrent();
  const agents = useLoad(async () => must(await supabase.from("agents").select("*").eq("workspace_id", workspace.id).order("created_at")), [supabase, workspace.id]);
  const [opened, { open, close }] = useDisclosure(false);
  const navigate = useNavigate();
  return (
    <Stack>
      <PageHeader
        title="Agents"
        description="An agent acts for one member and can never do more than that member holds. Give it grants on accounts, then a key."
        actions={<Button onClick={open}>New agent</Button>}
      />
      <ErrorAlert error={agents.error} />
      <Card withBorder>
        {agents.data?.length === 0 ? (
          <Empty>No agents yet.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={560}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Acts for</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Created</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(agents.data ?? []).map((a) => (
                  <Table.Tr key={a.id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/w/${workspace.id}/agents/${a.id}`}>
                        {a.name}
                      </Anchor>
                      {a.description && (
                        <Text size="xs" c="dimmed" lineClamp={1}>
                          {a.description}
                        </Text>
                      )}
                    </Table.Td>
                    <Table.Td>{memberLabel(a.user_id)}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={a.is_active ? "active" : "disabled"} />
                    </Table.Td>
                    <Table.Td>{formatTime(a.created_at)}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <Modal opened={opened} onClose={close} title="New agent">
        <CreateAgentForm
          workspaceId={workspace.id}
          onCreated={(id) => {
            close();
            navigate(`/w/${workspace.id}/agents/${id}`);
          }}
        />
      </Modal>
    </Stack>
  );
}

function CreateAgentForm({ workspaceId, onCreated }: { workspaceId: string; onCreated: (id: string) => void }) {
  const supabase = useSupabase();
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const action = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void action
          .run(
            async () =>
              must(await supabase.rpc("create_agent", { p_name: name.trim(), p_workspace_id: workspaceId, ...(description.trim() ? { p_description: description.trim() } : {}) })) as {
                id: string;
              },
            "Agent created",
          )
          .then((a) => a && onCreated(a.id));
      }}
    >
      <Stack gap="sm">
        <TextInput label="Name" required maxLength={100} value={name} onChange={(e) => setName(e.currentTarget.value)} data-autofocus />
        <Textarea label="Description" maxLength={2000} value={description} onChange={(e) => setDescription(e.currentTarget.value)} />
        <Text size="xs" c="dimmed">
          The agent acts for you.
        </Text>
        <ErrorAlert error={action.error} title="Could not create the agent" />
        <Group justify="flex-end">
          <Button type="submit" loading={action.busy}>
            Create agent
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

type Grant = Row<"agent_permissions">;

export function AgentPage() {
  const { agentId } = useParams();
  const supabase = useSupabase();
  const { workspace, memberLabel, isAdmin } = useCurrent();
  const me = useMe();
  const agent = useLoad(async () => must(await supabase.from("agents").select("*").eq("id", agentId!))[0] ?? null, [supabase, agentId]);
  const grants = useLoad(async () => must(await supabase.from("agent_permissions").select("*").eq("agent_id", agentId!).order("granted_at")), [supabase, agentId]);
  const keys = useLoad(
    async () =>
      must(await supabase.from("agent_keys").select("id, name, key_prefix, created_at, expires_at, revoked_at, last_used_at").eq("agent_id", agentId!).order("created_at", { ascending: false })),
    [supabase, agentId],
  );
  const connections = useConnections(workspace.id);
  const [editing, setEditing] = useState<Grant | "new" | null>(null);
  const toggle = useAction();

  if (agent.error) return <ErrorAlert error={agent.error} />;
  if (agent.data === undefined) return null;
  if (agent.data === null) {
    return (
      <Stack>
        <PageHeader title="Agent not found" />
        <Anchor component={Link} to={`/w/${workspace.id}/agents`}>
          Back to agents
        </Anchor>
      </Stack>
    );
  }
  const a = agent.data;
  const canManage = a.user_id === me.id || isAdmin;
  const connectionName = (id: string) => {
    const c = connections.data?.find((x) => x.id === id);
    return c ? connectionLabel(c) : "an account you may not view";
  };

  return (
    <Stack>
      <PageHeader
        title={a.name}
        description={`Acts for ${memberLabel(a.user_id)}. ${a.description ?? ""}`}
        actions={
          canManage && (
            <Switch
              label="Active"
              checked={a.is_active}
              disabled={toggle.busy}
              onChange={(e) => {
                const active = e.currentTarget.checked;
                void toggle.run(async () => {
                  must(await supabase.from("agents").update({ is_active: active }).eq("id", a.id).select("id"));
                  await agent.reload();
                }, active ? "Agent enabled" : "Agent disabled");
              }}
            />
          )
        }
      />
      <ErrorAlert error={toggle.error} title="Could not change the agent" />
      <Card withBorder>
        <Group justify="space-between" mb="xs">
          <Title order={3} size="h4">
            Grants
          </Title>
          {canManage && (
            <Button size="compact-sm" onClick={() => setEditing("new")}>
              Grant access
            </Button>
          )}
        </Group>
        <ErrorAlert error={grants.error} />
        {grants.data?.length === 0 ? (
          <Empty>No grants: the agent has no tools yet.</Empty>
        ) : (
          <Table.ScrollContainer minWidth={720}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Account</Table.Th>
                  <Table.Th>Scopes</Table.Th>
                  <Table.Th>Daily / monthly</Table.Th>
                  <Table.Th>Per message</Table.Th>
                  <Table.Th>Recipients</Table.Th>
                  <Table.Th>Expires</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Actions</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(grants.data ?? []).map((g) => (
                  <Table.Tr key={g.id}>
                    <Table.Td>{connectionName(g.connection_id)}</Table.Td>
                    <Table.Td>{g.allowed_scopes.join(", ")}</Table.Td>
                    <Table.Td>
                      {limitText(g.daily_send_limit)} / {limitText(g.monthly_send_limit)}
                    </Table.Td>
                    <Table.Td>{g.max_recipients_per_message}</Table.Td>
                    <Table.Td>
                      <Text size="xs">{g.allowed_recipients.length ? `only ${g.allowed_recipients.join(", ")}` : "anyone"}</Text>
                      {g.blocked_recipients.length > 0 && <Text size="xs">not {g.blocked_recipients.join(", ")}</Text>}
                    </Table.Td>
                    <Table.Td>{formatTime(g.expires_at)}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={g.is_active ? "active" : "disabled"} />
                    </Table.Td>
                    <Table.Td>
                      {canManage && (
                        <Group gap="xs" wrap="nowrap">
                          <Button size="compact-sm" variant="light" onClick={() => setEditing(g)} aria-label={`Edit the grant on ${connectionName(g.connection_id)}`}>
                            Edit
                          </Button>
                          {g.is_active && (
                            <ConfirmButton
                              label="Revoke"
                              aria-label={`Revoke the grant on ${connectionName(g.connection_id)}`}
                              title="Revoke grant"
                              message="The agent loses these tools at once; its calls on this account are refused."
                              confirmLabel="Revoke grant"
                              onConfirm={async () => {
                                must(await supabase.rpc("revoke_agent_permission", { p_permission_id: g.id }));
                                await grants.reload();
                              }}
                            />
                          )}
                        </Group>
                      )}
                    </Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <Keys agentId={a.id} keys={keys} canManage={canManage} />
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={editing === "new" ? "Grant access" : "Edit grant"} size="lg">
        {editing !== null && (
          <GrantForm
            agentId={a.id}
            grant={editing === "new" ? null : editing}
            connections={(connections.data ?? []).map((c) => ({ value: c.id, label: connectionLabel(c), scopes: c.granted_scopes }))}
            onSaved={async () => {
              setEditing(null);
              await grants.reload();
            }}
          />
        )}
      </Modal>
    </Stack>
  );
}

function GrantForm({
  agentId,
  grant,
  connections,
  onSaved,
}: {
  agentId: string;
  grant: Grant | null;
  connections: { value: string; label: string; scopes: string[] }[];
  onSaved: () => Promise<void>;
}) {
  const supabase = useSupabase();
  const [connectionId, setConnectionId] = useState<string | null>(grant?.connection_id ?? null);
  const [scopes, setScopes] = useState<string[]>(grant?.allowed_scopes ?? []);
  const [daily, setDaily] = useState<string | number>(grant ? (grant.daily_send_limit ?? "") : 100);
  const [monthly, setMonthly] = useState<string | number>(grant?.monthly_send_limit ?? "");
  const [perMessage, setPerMessage] = useState<string | number>(grant?.max_recipients_per_message ?? 10);
  const [allowed, setAllowed] = useState<string[]>(grant?.allowed_recipients ?? []);
  const [blocked, setBlocked] = useState<string[]>(grant?.blocked_recipients ?? []);
  const [expires, setExpires] = useState(isoToLocal(grant?.expires_at));
  const action = useAction();
  const connection = connections.find((c) => c.value === connectionId);
  const num = (v: string | number) => (v === "" ? null : Number(v));

  async function save() {
    if (!connectionId) return;
    if (grant) {
      must(
        await supabase.rpc("update_agent_permission", {
          p_permission_id: grant.id,
          p_changes: {
            scopes,
            daily_send_limit: num(daily),
            monthly_send_limit: num(monthly),
            max_recipients_per_message: num(perMessage) ?? 10,
            allowed_recipients: allowed,
            blocked_recipients: blocked,
            expires_at: localToIso(expires),
            is_active: true,
          },
        }),
      );
    } else {
      must(
        await supabase.rpc("grant_agent_permission", {
          p_agent_id: agentId,
          p_connection_id: connectionId,
          p_scopes: scopes,
          p_daily_send_limit: num(daily) as number,
          p_monthly_send_limit: num(monthly) as number,
          p_max_recipients_per_message: num(perMessage) ?? 10,
          p_allowed_recipients: allowed,
          p_blocked_recipients: blocked,
          p_expires_at: localToIso(expires) as string,
        }),
      );
    }
  }

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void action.run(save, grant ? "Grant saved" : "Access granted").then(async (r) => r !== undefined && (await onSaved()));
      }}
    >
      <Stack gap="sm">
        <Select
          label="Account"
          required
          data={connections}
          value={connectionId}
          onChange={(v) => {
            setConnectionId(v);
            setScopes(connections.find((c) => c.value === v)?.scopes ?? []);
          }}
          disabled={!!grant}
          data-autofocus
        />
        <MultiSelect label="Scopes" withAsterisk data={connection?.scopes ?? grant?.allowed_scopes ?? []} value={scopes} onChange={setScopes} />
        <Group grow align="flex-start">
          <NumberInput label="Daily send limit" description="Messages per UTC day; empty for none of its own" min={0} allowDecimal={false} value={daily} onChange={setDaily} />
          <NumberInput label="Monthly send limit" description="Per UTC month; empty for none of its own" min={0} allowDecimal={false} value={monthly} onChange={setMonthly} />
        </Group>
        <NumberInput label="Recipients per message" min={1} max={10000} allowDecimal={false} value={perMessage} onChange={setPerMessage} />
        <TagsInput label="Allowed recipients" description="E.164 prefixes (+61) or e-mail patterns (a@x.com, x.com, *.x.com); empty allows all. Press Enter after each." value={allowed} onChange={setAllowed} />
        <TagsInput label="Blocked recipients" description="Blocked patterns win over allowed ones" value={blocked} onChange={setBlocked} />
        <TextInput label="Expires" type="datetime-local" value={expires} onChange={(e) => setExpires(e.currentTarget.value)} />
        <Alert color="gray" variant="light">
          A grant never exceeds what the agent's member holds on the account: the server refuses anything more and says why.
        </Alert>
        <ErrorAlert error={action.error} title="Could not save the grant" />
        <Group justify="flex-end">
          <Button type="submit" loading={action.busy} disabled={!connectionId || scopes.length === 0}>
            {grant ? "Save grant" : "Grant"}
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

type KeyRow = Pick<Row<"agent_keys">, "id" | "name" | "key_prefix" | "created_at" | "expires_at" | "revoked_at" | "last_used_at">;

function Keys({ agentId, keys, canManage }: { agentId: string; keys: { data: KeyRow[] | undefined; error: string | null; reload: () => Promise<void> }; canManage: boolean }) {
  const supabase = useSupabase();
  const [opened, { open, close }] = useDisclosure(false);
  const [issued, setIssued] = useState<{ key: string; key_prefix: string } | null>(null);
  const [name, setName] = useState("");
  const [expires, setExpires] = useState("");
  const action = useAction();
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">
          Keys
        </Title>
        {canManage && (
          <Button size="compact-sm" onClick={open}>
            Issue a key
          </Button>
        )}
      </Group>
      <ErrorAlert error={keys.error} />
      {keys.data?.length === 0 ? (
        <Empty>No keys. The agent authenticates with a key (Authorization: Bearer swb_agent_…).</Empty>
      ) : (
        <Table.ScrollContainer minWidth={560}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Key</Table.Th>
                <Table.Th>Name</Table.Th>
                <Table.Th>Created</Table.Th>
                <Table.Th>Last used</Table.Th>
                <Table.Th>Status</Table.Th>
                <Table.Th>Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(keys.data ?? []).map((k) => {
                const expired = !!k.expires_at && new Date(k.expires_at) < new Date();
                return (
                  <Table.Tr key={k.id}>
                    <Table.Td>
                      <code>{k.key_prefix}…</code>
                    </Table.Td>
                    <Table.Td>{k.name ?? "—"}</Table.Td>
                    <Table.Td>{formatTime(k.created_at)}</Table.Td>
                    <Table.Td>{formatTime(k.last_used_at)}</Table.Td>
                    <Table.Td>
                      {k.revoked_at ? <Badge color="gray">revoked</Badge> : expired ? <Badge color="gray">expired</Badge> : <Badge color="green">active</Badge>}
                    </Table.Td>
                    <Table.Td>
                      {canManage && !k.revoked_at && (
                        <ConfirmButton
                          label="Revoke"
                          aria-label={`Revoke key ${k.key_prefix}`}
                          title="Revoke key"
                          message={`${k.key_prefix}… is refused everywhere from the next request on.`}
                          confirmLabel="Revoke key"
                          onConfirm={async () => {
                            must(await supabase.rpc("revoke_agent_key", { p_key_id: k.id }));
                            await keys.reload();
                          }}
                        />
                      )}
                    </Table.Td>
                  </Table.Tr>
                );
              })}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <Modal
        opened={opened}
        onClose={() => {
          close();
          setIssued(null);
          setName("");
          setExpires("");
        }}
        title={issued ? "Your new key" : "Issue a key"}
        size="lg"
        closeOnClickOutside={!issued}
      >
        {issued ? (
          <Stack>
            <Alert color="yellow" title="Copy it now">
              This is the only time the key is shown. Only its hash is stored: if you lose it, issue a new one.
            </Alert>
            <CopyField value={issued.key} label="agent key" />
            <Group justify="flex-end">
              <Button
                onClick={() => {
                  close();
                  setIssued(null);
                }}
              >
                I have copied it
              </Button>
            </Group>
          </Stack>
        ) : (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              void action
                .run(
                  async () =>
                    must(
                      await supabase.rpc("issue_agent_key", {
                        p_agent_id: agentId,
                        ...(name.trim() ? { p_name: name.trim() } : {}),
                        ...(expires ? { p_expires_at: localToIso(expires)! } : {}),
                      }),
                    ) as { key: string; key_prefix: string },
                )
                .then(async (k) => {
                  if (!k) return;
                  setIssued(k);
                  await keys.reload();
                });
            }}
          >
            <Stack gap="sm">
              <TextInput label="Key name" description="Optional: where the key is used" value={name} onChange={(e) => setName(e.currentTarget.value)} data-autofocus />
              <TextInput label="Expires" type="datetime-local" value={expires} onChange={(e) => setExpires(e.currentTarget.value)} />
              <ErrorAlert error={action.error} title="Could not issue the key" />
              <Group justify="flex-end">
                <Button type="submit" loading={action.busy}>
                  Issue key
                </Button>
              </Group>
            </Stack>
          </form>
        )}
      </Modal>
    </Card>
  );
}
