export { createDashboard, DASHBOARD_BASE, type DashboardDeps } from './dashboard.js';
export { DashboardAuth, SESSION_COOKIE } from './session.js';
export { StateHub, dashboardState, type DashboardState } from './snapshot.js';
