/// <reference types="vitest/config" />
// Vite config for the Clowdy UI. `npm run dev` proxies /api to a running clowdy (CLOWDY_API,
// default http://127.0.0.1:8000) so the UI talks to the same origin as in production.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";
import tailwindcss from "@tailwindcss/vite";
import path from "node:path";

const api = process.env.CLOWDY_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: { alias: { "@": path.resolve(__dirname, "src") } },
  server: { proxy: { "/api": { target: api, changeOrigin: false } } },
  preview: { proxy: { "/api": { target: api, changeOrigin: false } } },
  build: {
    chunkSizeWarningLimit: 4000,
  },
  worker: { format: "es" },
  test: { environment: "jsdom", include: ["src/**/*.test.{ts,tsx}"] },
});
