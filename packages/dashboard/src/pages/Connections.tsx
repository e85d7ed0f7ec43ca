/**
 * Connections: a workspace's provider accounts. Create forms are generated from the
 * provider catalogue (config schema + credential fields); credentials are password
 * inputs, sent once to create_connection / rotate_connection_credentials and cleared:
 * nothing ever reads them back. A connection's page tests it (the provider function's
 * POST /<function>/test with the user's JWT), edits its name and config, rotates its
 * credentials, deletes it, lists its webhook URLs (admins) and its members' access.
 */
import { Anchor, Badge, Button, Card, Checkbox, Group, Modal, MultiSelect, NumberInput, Select, SimpleGrid, Stack, Table, TagsInput, Text, TextInput, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useEffect, useMemo, useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { ConfirmButton, CopyField, Empty, ErrorAlert, PageHeader, StatusBadge, useAction } from "../components.tsx";
import { useConnections, useProviders, type ConnectionRow, type Provider } from "../lib/catalogue.ts";
import { functionErrorMessage, must } from "../lib/errors.ts";
import { formatTime, isoToLocal, limitText, localToIso } from "../lib/format.ts";
import { useApp, useSupabase } from "../lib/supabase.ts";
import { useLoad } from "../lib/useLoad.ts";
import { useCurrent } from "../lib/workspace.tsx";
import { ConfigFields, configFromValues, CredentialFields, schemaOf, validateConfig, valuesFromConfig, type FormValues } from "../schemaForm.tsx";

export function ConnectionsPage() {
  const { workspace, isAdmin } = useCurrent();
  const connections = useConnections(workspace.id);
  const [opened, { open, close }] = useDisclosure(false);
  const navigate = useNavigate();
  return (
    <Stack>
      <PageHeader
        title="Connections"
        description="Provider accounts of this workspace. Credentials go to Vault when you save them and are never shown again."
        actions={isAdmin && <Button onClick={open}>Connect an account</Button>}
      />
      <ErrorAlert error={connections.error} />
      <Card withBorder>
        {connections.data?.length === 0 ? (
          <Empty>{isAdmin ? "No accounts yet: connect one." : "You may not view any account of this workspace yet: an owner or admin gives you access."}</Empty>
        ) : (
          <Table.ScrollContainer minWidth={640}>
            <Table>
              <Table.Thead>
                <Table.Tr>
                  <Table.Th>Name</Table.Th>
                  <Table.Th>Provider</Table.Th>
                  <Table.Th>Status</Table.Th>
                  <Table.Th>Last test</Table.Th>
                  <Table.Th>Scopes</Table.Th>
                </Table.Tr>
              </Table.Thead>
              <Table.Tbody>
                {(connections.data ?? []).map((c) => (
                  <Table.Tr key={c.id}>
                    <Table.Td>
                      <Anchor component={Link} to={`/w/${workspace.id}/connections/${c.id}`}>
                        {c.name}
                      </Anchor>{" "}
                      {c.is_default_mail && (
                        <Badge size="xs" variant="outline">
                          default mail
                        </Badge>
                      )}
                    </Table.Td>
                    <Table.Td>{c.provider?.display_name}</Table.Td>
                    <Table.Td>
                      <StatusBadge status={c.status} />
                    </Table.Td>
                    <Table.Td>{c.last_tested_at ? `${c.last_test_ok ? "passed" : "failed"} ${formatTime(c.last_tested_at)}` : "never"}</Table.Td>
                    <Table.Td>{c.granted_scopes.join(", ")}</Table.Td>
                  </Table.Tr>
                ))}
              </Table.Tbody>
            </Table>
          </Table.ScrollContainer>
        )}
      </Card>
      <Modal opened={opened} onClose={close} title="Connect an account" size="lg">
        <CreateConnectionForm
          workspaceId={workspace.id}
          onCreated={(id) => {
            close();
            void connections.reload();
            navigate(`/w/${workspace.id}/connections/${id}`);
          }}
        />
      </Modal>
    </Stack>
  );
}

function CreateConnectionForm({ workspaceId, onCreated }: { workspaceId: string; onCreated: (id: string) => void }) {
  const supabase = useSupabase();
  const providers = useProviders();
  const [providerName, setProviderName] = useState<string | null>(null);
  const [name, setName] = useState("");
  const [config, setConfig] = useState<FormValues>({});
  const [credentials, setCredentials] = useState<FormValues>({});
  const [scopes, setScopes] = useState<string[]>([]);
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const action = useAction();
  const provider = providers.data?.find((p) => p.name === providerName);
  const schema = schemaOf(provider?.config_schema);

  useEffect(() => {
    setConfig({});
    setCredentials({});
    setFieldErrors({});
    setScopes(provider?.scopes_supported ?? []);
  }, [provider]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    if (!provider) return;
    const errors = validateConfig(schema, config);
    setFieldErrors(errors);
    if (Object.keys(errors).length) return;
    const sent = { ...credentials };
    // The credentials leave the form now: the inputs are emptied whatever the answer.
    setCredentials({});
    const created = await action.run(
      async () =>
        must(
          await supabase.rpc("create_connection", {
            p_provider: provider.name,
            p_name: name.trim(),
            p_credentials: sent,
            p_config: configFromValues(schema, config),
            p_scopes: scopes,
            p_workspace_id: workspaceId,
          }),
        ) as { id: string },
      "Account connected",
    );
    if (created) onCreated(created.id);
  }

  return (
    <form onSubmit={submit} aria-label="Connect an account">
      <Stack gap="sm">
        <ErrorAlert error={providers.error} />
        <Select
          label="Provider"
          required
          data={(providers.data ?? []).map((p) => ({ value: p.name, label: p.display_name }))}
          value={providerName}
          onChange={setProviderName}
          data-autofocus
        />
        {provider && (
          <>
            <TextInput label="Name" description="How people and agents will know this account" required maxLength={100} value={name} onChange={(e) => setName(e.currentTarget.value)} />
            <Title order={3} size="h5" mt="xs">
              Credentials
            </Title>
            <Text size="xs" c="dimmed">
              Stored in Vault. Nobody can read them back, you included: to change them, rotate.
            </Text>
            <CredentialFields fields={provider.credential_fields} values={credentials} onChange={(k, v) => setCredentials((c) => ({ ...c, [k]: v }))} idPrefix="new-cred" />
            <Title order={3} size="h5" mt="xs">
              Settings
            </Title>
            <ConfigFields
              schema={schema}
              metadata={provider.configuration_metadata}
              values={config}
              errors={fieldErrors}
              onChange={(k, v) => setConfig((c) => ({ ...c, [k]: v }))}
              idPrefix="new-config"
            />
            <MultiSelect label="Scopes" description="What this account may be used for; permissions and grants can only narrow it" data={provider.scopes_supported} value={scopes} onChange={setScopes} />
          </>
        )}
        <ErrorAlert error={action.error} title="Could not connect the account" />
        <Group justify="flex-end">
          <Button type="submit" loading={action.busy} disabled={!provider}>
            Connect
          </Button>
        </Group>
      </Stack>
    </form>
  );
}

export function ConnectionPage() {
  const { connectionId } = useParams();
  const { workspace, isAdmin } = useCurrent();
  const connections = useConnections(workspace.id);
  const connection = connections.data?.find((c) => c.id === connectionId);
  if (connections.error) return <ErrorAlert error={connections.error} />;
  if (!connections.data) return null;
  if (!connection) {
    return (
      <Stack>
        <PageHeader title="Connection not found" />
        <Text>
          This account does not exist or you may not see it. <Anchor component={Link} to={`/w/${workspace.id}/connections`}>Back to connections</Anchor>
        </Text>
      </Stack>
    );
  }
  return <ConnectionDetail connection={connection} isAdmin={isAdmin} reload={connections.reload} />;
}

function ConnectionDetail({ connection, isAdmin, reload }: { connection: ConnectionRow; isAdmin: boolean; reload: () => Promise<void> }) {
  const supabase = useSupabase();
  const { workspace } = useCurrent();
  const navigate = useNavigate();
  const provider = connection.provider;
  const test = useAction();
  const [testResult, setTestResult] = useState<{ ok: boolean; message: string } | null>(null);

  async function runTest() {
    if (!provider?.function_name) return;
    setTestResult(null);
    await test.run(async () => {
      const { data, error } = await supabase.functions.invoke(`${provider.function_name}/test`, { body: { connection_id: connection.id } });
      if (error) throw new Error(await functionErrorMessage(error));
      setTestResult(data as { ok: boolean; message: string });
      await reload();
    });
  }

  return (
    <Stack>
      <PageHeader
        title={connection.name}
        description={`${provider?.display_name ?? "Unknown provider"} · ${connection.granted_scopes.join(", ")}`}
        actions={
          <>
            <Button variant="light" onClick={() => void runTest()} loading={test.busy} disabled={!provider?.function_name}>
              Test connection
            </Button>
            {isAdmin && (
              <ConfirmButton
                label="Delete"
                title="Delete connection"
                message={`"${connection.name}" is deleted with its credentials, and every agent grant on it is revoked. Its past activity stays in the log.`}
                confirmLabel="Delete connection"
                onConfirm={async () => {
                  must(await supabase.rpc("delete_connection", { p_connection_id: connection.id }));
                  navigate(`/w/${workspace.id}/connections`);
                }}
              />
            )}
          </>
        }
      />
      <ErrorAlert error={test.error} title="The test could not run" />
      {testResult && (
        <Card withBorder bg={testResult.ok ? "var(--mantine-color-green-light)" : "var(--mantine-color-red-light)"} role="status">
          <Text fw={600}>{testResult.ok ? "Test passed" : "Test failed"}</Text>
          <Text size="sm">{testResult.message}</Text>
        </Card>
      )}
      <SimpleGrid cols={{ base: 1, md: 2 }}>
        <Card withBorder>
          <Title order={3} size="h4" mb="xs">
            Status
          </Title>
          <Stack gap={4}>
            <Text size="sm">
              Status: <StatusBadge status={connection.status} />
            </Text>
            <Text size="sm">
              Last test: {connection.last_tested_at ? `${connection.last_test_ok ? "passed" : "failed"}, ${formatTime(connection.last_tested_at)}` : "never"}
            </Text>
            {connection.last_test_message && (
              <Text size="sm" c="dimmed">
                {connection.last_test_message}
              </Text>
            )}
            <Text size="sm">Credentials rotated: {formatTime(connection.credentials_rotated_at)}</Text>
            <Text size="sm">Created: {formatTime(connection.created_at)}</Text>
            {connection.is_default_mail && <Badge variant="outline">The workspace's default mail account</Badge>}
          </Stack>
          {isAdmin && provider && <RotateCredentials connection={connection} provider={provider} onDone={reload} />}
        </Card>
        {isAdmin && provider && <Webhooks connection={connection} provider={provider} />}
      </SimpleGrid>
      {provider && <EditConnection connection={connection} provider={provider} isAdmin={isAdmin} onSaved={reload} />}
      {isAdmin && !workspace.personal && <MemberAccess connection={connection} />}
    </Stack>
  );
}

function RotateCredentials({ connection, provider, onDone }: { connection: ConnectionRow; provider: Provider; onDone: () => Promise<void> }) {
  const supabase = useSupabase();
  const [opened, { open, close }] = useDisclosure(false);
  const [values, setValues] = useState<FormValues>({});
  const action = useAction();
  const shut = () => {
    setValues({});
    action.setError(null);
    close();
  };
  return (
    <>
      <Button variant="default" mt="md" onClick={open}>
        Rotate credentials
      </Button>
      <Modal opened={opened} onClose={shut} title={`Rotate the credentials of ${connection.name}`}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            const sent = { ...values };
            setValues({});
            void action
              .run(async () => must(await supabase.rpc("rotate_connection_credentials", { p_connection_id: connection.id, p_credentials: sent })), "Credentials replaced")
              .then(async (r) => {
                if (r === undefined) return;
                shut();
                await onDone();
              });
          }}
        >
          <Stack gap="sm">
            <Text size="sm" c="dimmed">
              The new credentials replace the old ones in Vault at once. The last test result is cleared.
            </Text>
            <CredentialFields fields={provider.credential_fields} values={values} onChange={(k, v) => setValues((c) => ({ ...c, [k]: v }))} idPrefix="rotate" />
            <ErrorAlert error={action.error} title="Could not rotate" />
            <Group justify="flex-end">
              <Button variant="default" onClick={shut}>
                Cancel
              </Button>
              <Button type="submit" loading={action.busy}>
                Replace credentials
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  );
}

function Webhooks({ connection, provider }: { connection: ConnectionRow; provider: Provider }) {
  const supabase = useSupabase();
  const { config } = useApp();
  const hook = useLoad(
    async () => must(await supabase.from("connection_webhooks").select("webhook_token").eq("connection_id", connection.id))[0]?.webhook_token ?? null,
    [supabase, connection.id],
  );
  return (
    <Card withBorder>
      <Title order={3} size="h4" mb="xs">
        Webhook URLs
      </Title>
      <ErrorAlert error={hook.error} />
      {provider.webhook_kinds.length === 0 || !provider.function_name ? (
        <Empty>{provider.display_name} sends no webhooks.</Empty>
      ) : hook.data ? (
        <Stack gap="xs">
          <Text size="xs" c="dimmed">
            Point the provider's {provider.webhook_kinds.join(" and ")} webhooks here. Keep them secret: whoever holds one can post events in the provider's name.
          </Text>
          {provider.webhook_kinds.map((kind) => (
            <div key={kind}>
              <Text size="sm" fw={500}>
                {kind}
              </Text>
              <CopyField value={`${config.supabaseUrl}/functions/v1/${provider.function_name}/webhooks/${hook.data}/${kind}`} label={`${kind} webhook URL`} />
            </div>
          ))}
        </Stack>
      ) : (
        !hook.loading && <Empty>No webhook token visible to you.</Empty>
      )}
    </Card>
  );
}

function EditConnection({ connection, provider, isAdmin, onSaved }: { connection: ConnectionRow; provider: Provider; isAdmin: boolean; onSaved: () => Promise<void> }) {
  const supabase = useSupabase();
  const schema = schemaOf(provider.config_schema);
  const initial = useMemo(() => valuesFromConfig(schema, connection.config), [schema, connection.config]);
  const [name, setName] = useState(connection.name);
  const [values, setValues] = useState<FormValues>(initial);
  const [scopes, setScopes] = useState<string[]>(connection.granted_scopes);
  const [status, setStatus] = useState<string>(connection.status === "disabled" ? "disabled" : "active");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const action = useAction();
  return (
    <Card withBorder>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const found = validateConfig(schema, values);
          setErrors(found);
          if (Object.keys(found).length) return;
          const changes: Record<string, unknown> = { name: name.trim(), config: configFromValues(schema, values) };
          if (isAdmin) {
            changes.scopes = scopes;
            changes.status = status;
          }
          void action
            .run(async () => must(await supabase.rpc("update_connection", { p_connection_id: connection.id, p_changes: changes as never })), "Connection saved")
            .then(async (r) => r !== undefined && (await onSaved()));
        }}
      >
        <Stack gap="sm">
          <Title order={3} size="h4">
            Settings
          </Title>
          <TextInput label="Name" required maxLength={100} value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <ConfigFields schema={schema} metadata={provider.configuration_metadata} values={values} errors={errors} onChange={(k, v) => setValues((c) => ({ ...c, [k]: v }))} idPrefix="edit-config" />
          {isAdmin && (
            <>
              <MultiSelect label="Scopes" description="Narrowing scopes narrows every grant and permission on this account" data={provider.scopes_supported} value={scopes} onChange={setScopes} />
              <Select label="Status" data={["active", "disabled"]} value={status} onChange={(v) => setStatus(v ?? "active")} allowDeselect={false} />
            </>
          )}
          <ErrorAlert error={action.error} title="Could not save" />
          <Group justify="flex-end">
            <Button type="submit" loading={action.busy}>
              Save settings
            </Button>
          </Group>
        </Stack>
      </form>
    </Card>
  );
}

/** What each member may do with this connection (set_member_permission / remove_member_permission). */
function MemberAccess({ connection }: { connection: ConnectionRow }) {
  const supabase = useSupabase();
  const { workspace, members, memberLabel } = useCurrent();
  const permissions = useLoad(async () => must(await supabase.from("member_permissions").select("*").eq("connection_id", connection.id)), [supabase, connection.id]);
  const [editing, setEditing] = useState<string | null>(null);
  const plainMembers = (members.data ?? []).filter((m) => m.role === "member");
  return (
    <Card withBorder>
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h4">
          Member access
        </Title>
        <Button size="compact-sm" variant="light" onClick={() => setEditing("")} disabled={plainMembers.length === 0}>
          Set a member's access
        </Button>
      </Group>
      <Text size="xs" c="dimmed" mb="xs">
        Owners and admins hold everything. A member sees this account only with "view", sends with "send" (within these limits), and renames or tests it with "configure".
        Their agents never get more.
      </Text>
      <ErrorAlert error={permissions.error} />
      {permissions.data?.length === 0 ? (
        <Empty>No member holds a permission on this account.</Empty>
      ) : (
        <Table.ScrollContainer minWidth={640}>
          <Table>
            <Table.Thead>
              <Table.Tr>
                <Table.Th>Member</Table.Th>
                <Table.Th>May</Table.Th>
                <Table.Th>Scopes</Table.Th>
                <Table.Th>Daily / monthly</Table.Th>
                <Table.Th>Expires</Table.Th>
                <Table.Th>Actions</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {(permissions.data ?? []).map((p) => (
                <Table.Tr key={p.id}>
                  <Table.Td>{memberLabel(p.user_id)}</Table.Td>
                  <Table.Td>{[p.can_view && "view", p.can_send && "send", p.can_configure && "configure"].filter(Boolean).join(", ") || "nothing"}</Table.Td>
                  <Table.Td>{p.scopes.join(", ") || "—"}</Table.Td>
                  <Table.Td>
                    {limitText(p.daily_send_limit)} / {limitText(p.monthly_send_limit)}
                  </Table.Td>
                  <Table.Td>{formatTime(p.expires_at)}</Table.Td>
                  <Table.Td>
                    <Group gap="xs">
                      <Button size="compact-sm" variant="light" onClick={() => setEditing(p.user_id)} aria-label={`Edit the access of ${memberLabel(p.user_id)}`}>
                        Edit
                      </Button>
                      <ConfirmButton
                        label="Remove"
                        aria-label={`Remove the access of ${memberLabel(p.user_id)}`}
                        title="Remove access"
                        message={`${memberLabel(p.user_id)} no longer sees ${connection.name}; their agents lose it at their next call.`}
                        confirmLabel="Remove access"
                        onConfirm={async () => {
                          must(await supabase.rpc("remove_member_permission", { p_connection_id: connection.id, p_user_id: p.user_id }));
                          await permissions.reload();
                        }}
                      />
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
        </Table.ScrollContainer>
      )}
      <Modal opened={editing !== null} onClose={() => setEditing(null)} title={`Access to ${connection.name}`} size="lg">
        {editing !== null && (
          <PermissionForm
            connection={connection}
            userId={editing}
            existing={permissions.data?.find((p) => p.user_id === editing)}
            members={plainMembers.map((m) => ({ value: m.user_id, label: m.label }))}
            workspaceId={workspace.id}
            onSaved={async () => {
              setEditing(null);
              await permissions.reload();
            }}
          />
        )}
      </Modal>
    </Card>
  );
}

function PermissionForm({
  connection,
  userId,
  existing,
  members,
  onSaved,
}: {
  connection: ConnectionRow;
  userId: string;
  existing: { can_view: boolean; can_send: boolean; can_configure: boolean; scopes: string[]; daily_send_limit: number | null; monthly_send_limit: number | null; allowed_recipients: string[]; blocked_recipients: string[]; expires_at: string | null } | undefined;
  members: { value: string; label: string }[];
  workspaceId: string;
  onSaved: () => Promise<void>;
}) {
  const supabase = useSupabase();
  const [member, setMember] = useState<string | null>(userId || null);
  const [canView, setCanView] = useState(existing?.can_view ?? true);
  const [canSend, setCanSend] = useState(existing?.can_send ?? false);
  const [canConfigure, setCanConfigure] = useState(existing?.can_configure ?? false);
  const [scopes, setScopes] = useState<string[]>(existing?.scopes ?? connection.granted_scopes);
  const [daily, setDaily] = useState<string | number>(existing?.daily_send_limit ?? "");
  const [monthly, setMonthly] = useState<string | number>(existing?.monthly_send_limit ?? "");
  const [allowed, setAllowed] = useState<string[]>(existing?.allowed_recipients ?? []);
  const [blocked, setBlocked] = useState<string[]>(existing?.blocked_recipients ?? []);
  const [expires, setExpires] = useState(isoToLocal(existing?.expires_at));
  const action = useAction();
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        if (!member) return;
        void action
          .run(
            async () =>
              must(
                await supabase.rpc("set_member_permission", {
                  p_connection_id: connection.id,
                  p_user_id: member,
                  p_can_view: canView,
                  p_can_send: canSend,
                  p_can_configure: canConfigure,
                  p_scopes: scopes,
                  p_daily_send_limit: daily === "" ? (null as never) : Number(daily),
                  p_monthly_send_limit: monthly === "" ? (null as never) : Number(monthly),
                  p_allowed_recipients: allowed,
                  p_blocked_recipients: blocked,
                  p_expires_at: (localToIso(expires) ?? null) as never,
                }),
              ),
            "Access saved",
          )
          .then(async (r) => r !== undefined && (await onSaved()));
      }}
    >
      <Stack gap="sm">
        <Select label="Member" required data={members} value={member} onChange={setMember} disabled={!!userId} data-autofocus />
        <Group>
          <Checkbox label="May view" checked={canView} onChange={(e) => setCanView(e.currentTarget.checked)} />
          <Checkbox label="May send" checked={canSend} onChange={(e) => setCanSend(e.currentTarget.checked)} />
          <Checkbox label="May configure" checked={canConfigure} onChange={(e) => setCanConfigure(e.currentTarget.checked)} />
        </Group>
        <MultiSelect label="Scopes" data={connection.granted_scopes} value={scopes} onChange={setScopes} />
        <Group grow>
          <NumberInput label="Daily send limit" description="Messages per UTC day; empty for none" min={0} allowDecimal={false} value={daily} onChange={setDaily} />
          <NumberInput label="Monthly send limit" description="Per UTC month; empty for none" min={0} allowDecimal={false} value={monthly} onChange={setMonthly} />
        </Group>
        <TagsInput label="Allowed recipients" description="E.164 prefixes (+61) or e-mail patterns (a@x.com, x.com, *.x.com); empty allows all" value={allowed} onChange={setAllowed} />
        <TagsInput label="Blocked recipients" description="Blocked patterns win over allowed ones" value={blocked} onChange={setBlocked} />
        <TextInput label="Expires" type="datetime-local" value={expires} onChange={(e) => setExpires(e.currentTarget.value)} />
        <ErrorAlert error={action.error} title="Could not save the access" />
        <Group justify="flex-end">
          <Button type="submit" loading={action.busy} disabled={!member}>
            Save access
          </Button>
        </Group>
      </Stack>
    </form>
  );
}
