import "@mantine/core/styles.css";
import "@mantine/charts/styles.css";
import "@mantine/notifications/styles.css";
import { Alert, Center, MantineProvider } from "@mantine/core";
import { Notifications } from "@mantine/notifications";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App.tsx";
import { loadConfig } from "./lib/config.ts";
import { AppContext, createDashboardClient } from "./lib/supabase.ts";
import { theme } from "./theme.ts";

const root = createRoot(document.getElementById("root")!);

loadConfig().then(
  (config) => {
    const supabase = createDashboardClient(config);
    root.render(
      <StrictMode>
        <MantineProvider theme={theme} defaultColorScheme="auto">
          <Notifications position="top-right" />
          <AppContext.Provider value={{ supabase, config }}>
            <App />
          </AppContext.Provider>
        </MantineProvider>
      </StrictMode>,
    );
  },
  (error: Error) => {
    root.render(
      <MantineProvider theme={theme}>
        <Center h="100vh" p="md">
          <Alert color="red" title="The dashboard is not configured" maw={560}>
            {error.message}
          </Alert>
        </Center>
      </MantineProvider>,
    );
  },
);
