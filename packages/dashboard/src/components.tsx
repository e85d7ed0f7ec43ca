/** Small building blocks the pages share. */
import { ActionIcon, Alert, Badge, Button, Code, CopyButton, Group, Modal, Stack, Text, Title, Tooltip, type ButtonProps } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { notifications } from "@mantine/notifications";
import { useState, type ReactNode } from "react";
import { errorMessage } from "./lib/errors.ts";
import { STATUS_COLORS } from "./lib/format.ts";

export function PageHeader({ title, description, actions }: { title: string; description?: ReactNode; actions?: ReactNode }) {
  return (
    <Group justify="space-between" align="flex-start" mb="md" wrap="wrap" gap="sm">
      <div>
        <Title order={2}>{title}</Title>
        {description && (
          <Text c="dimmed" size="sm" maw={720}>
            {description}
          </Text>
        )}
      </div>
      {actions && <Group gap="xs">{actions}</Group>}
    </Group>
  );
}

function CopyIcon() {
  return (
    <svg aria-hidden width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <rect x="9" y="9" width="12" height="12" rx="2" />
      <path d="M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1" />
    </svg>
  );
}

function CheckIcon() {
  return (
    <svg aria-hidden width="16" height="16" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2.5" strokeLinecap="round" strokeLinejoin="round">
      <path d="M5 12l5 5L20 7" />
    </svg>
  );
}

export function ErrorAlert({ error, title = "Something went wrong" }: { error: string | null | undefined; title?: string }) {
  if (!error) return null;
  return (
    <Alert color="red" title={title} role="alert" mb="md">
      {error}
    </Alert>
  );
}

export function StatusBadge({ status }: { status: string | null | undefined }) {
  if (!status) return <Text span c="dimmed">—</Text>;
  return (
    <Badge color={STATUS_COLORS[status] ?? "gray"} variant="light">
      {status}
    </Badge>
  );
}

/** A value with a copy button (webhook URLs, keys, tokens). */
export function CopyField({ value, label }: { value: string; label: string }) {
  return (
    <Group gap="xs" wrap="nowrap" align="center">
      <Code style={{ wordBreak: "break-all", whiteSpace: "pre-wrap" }} aria-label={label}>
        {value}
      </Code>
      <CopyButton value={value} timeout={1500}>
        {({ copied, copy }) => (
          <Tooltip label={copied ? "Copied" : "Copy"} withArrow>
            <ActionIcon variant="subtle" color={copied ? "teal" : "gray"} onClick={copy} aria-label={`Copy ${label}`}>
              {copied ? <CheckIcon /> : <CopyIcon />}
            </ActionIcon>
          </Tooltip>
        )}
      </CopyButton>
    </Group>
  );
}

type Done<T> = [T] extends [void | undefined | null] ? true : NonNullable<T>;

/**
 * Runs a write, shows a notification, and turns an error into its plain message.
 * `run` resolves to the work's result (`true` for work that returns nothing), or to
 * undefined when it failed (the message is then in `error`).
 */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function run<T>(work: () => Promise<T>, success?: string): Promise<Done<T> | undefined> {
    setBusy(true);
    setError(null);
    try {
      const result = await work();
      if (success) notifications.show({ color: "green", message: success });
      return (result ?? true) as Done<T>;
    } catch (e) {
      setError(errorMessage(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { run, busy, error, setError };
}

/** A button that asks before doing something that cannot be undone. */
export function ConfirmButton({
  label,
  title,
  message,
  confirmLabel,
  onConfirm,
  ...buttonProps
}: {
  label: ReactNode;
  title: string;
  message: ReactNode;
  confirmLabel?: string;
  onConfirm: () => Promise<unknown>;
} & ButtonProps & { "aria-label"?: string }) {
  const [opened, { open, close }] = useDisclosure(false);
  const action = useAction();
  return (
    <>
      <Button color="red" variant="light" size="compact-sm" {...buttonProps} onClick={open}>
        {label}
      </Button>
      <Modal opened={opened} onClose={close} title={title} centered>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void action.run(onConfirm).then((r) => r !== undefined && close());
          }}
        >
          <Stack>
            <Text size="sm">{message}</Text>
            <ErrorAlert error={action.error} />
            <Group justify="flex-end">
              <Button variant="default" onClick={close}>
                Cancel
              </Button>
              <Button type="submit" color="red" loading={action.busy} data-autofocus>
                {confirmLabel ?? "Confirm"}
              </Button>
            </Group>
          </Stack>
        </form>
      </Modal>
    </>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return (
    <Text c="dimmed" size="sm" py="sm">
      {children}
    </Text>
  );
}
