/** Routes: sign-in and sign-up in the open; everything else under a workspace. */
import { Center, Loader } from "@mantine/core";
import { type ComponentType, lazy } from "react";
import { BrowserRouter, Navigate, Route, Routes, useLocation } from "react-router";
import { Layout } from "./Layout.tsx";
import { AuthProvider, useAuth } from "./lib/auth.tsx";
import { useWorkspaces, WorkspacesProvider } from "./lib/workspace.tsx";
import { OverviewPage } from "./pages/Overview.tsx";
import { SignInPage } from "./pages/SignIn.tsx";

/**
 * A page loaded when first visited (its own chunk: the charts of Usage, for one, need not
 * slow down signing in); Layout shows a loader meanwhile.
 */
function page<M>(load: () => Promise<M>, name: keyof M) {
  return lazy(async () => ({ default: (await load())[name] as ComponentType }));
}
const ActivityPage = page(() => import("./pages/Activity.tsx"), "ActivityPage");
const OperationPage = page(() => import("./pages/Activity.tsx"), "OperationPage");
const AgentsPage = page(() => import("./pages/Agents.tsx"), "AgentsPage");
const AgentPage = page(() => import("./pages/Agents.tsx"), "AgentPage");
const AuditPage = page(() => import("./pages/Audit.tsx"), "AuditPage");
const ConnectionsPage = page(() => import("./pages/Connections.tsx"), "ConnectionsPage");
const ConnectionPage = page(() => import("./pages/Connections.tsx"), "ConnectionPage");
const MembersPage = page(() => import("./pages/Members.tsx"), "MembersPage");
const NumbersPage = page(() => import("./pages/Numbers.tsx"), "NumbersPage");
const RoutesPage = page(() => import("./pages/Routes.tsx"), "RoutesPage");
const UsagePage = page(() => import("./pages/Usage.tsx"), "UsagePage");

function Loading() {
  return (
    <Center h="60vh">
      <Loader aria-label="Loading" />
    </Center>
  );
}

function RequireSession({ children }: { children: React.ReactNode }) {
  const { session, ready } = useAuth();
  const location = useLocation();
  if (!ready) return <Loading />;
  if (!session) return <Navigate to="/sign-in" replace state={{ from: location.pathname }} />;
  return <WorkspacesProvider>{children}</WorkspacesProvider>;
}

/** "/" goes to the personal workspace (listed first). */
function Home() {
  const workspaces = useWorkspaces();
  if (workspaces.loading && !workspaces.data) return <Loading />;
  const first = workspaces.data?.[0];
  if (!first) return <Loading />;
  return <Navigate to={`/w/${first.id}/overview`} replace />;
}

export function App() {
  return (
    <AuthProvider>
      <BrowserRouter>
        <Routes>
          <Route path="/sign-in" element={<SignInPage mode="sign-in" />} />
          <Route path="/sign-up" element={<SignInPage mode="sign-up" />} />
          <Route path="/" element={<RequireSession><Home /></RequireSession>} />
          <Route path="/w/:workspaceId" element={<RequireSession><Layout /></RequireSession>}>
            <Route index element={<Navigate to="overview" replace />} />
            <Route path="overview" element={<OverviewPage />} />
            <Route path="agents" element={<AgentsPage />} />
            <Route path="agents/:agentId" element={<AgentPage />} />
            <Route path="connections" element={<ConnectionsPage />} />
            <Route path="connections/:connectionId" element={<ConnectionPage />} />
            <Route path="numbers" element={<NumbersPage />} />
            <Route path="routes" element={<RoutesPage />} />
            <Route path="members" element={<MembersPage />} />
            <Route path="activity" element={<ActivityPage />} />
            <Route path="activity/:operationId" element={<OperationPage />} />
            <Route path="usage" element={<UsagePage />} />
            <Route path="audit" element={<AuditPage />} />
          </Route>
          <Route path="*" element={<Navigate to="/" replace />} />
        </Routes>
      </BrowserRouter>
    </AuthProvider>
  );
}
