import { describe, expect, it } from 'vitest';
import { siteSql } from './site-config.js';

describe("the bench's copy of config/orchestrator.ini's [sql]", () => {
  const config = (sql: string) => `[server]\nport = 8443\n\n${sql}\n[addressing]\nmode = static\n`;

  it('keeps every line of the section but moves path to the bench\'s file', () => {
    const sql = siteSql('/tmp/lab/state.db', config('[sql]\n; a comment\nenabled = true\npath = /var/lib/orchestrator/state.db\nmemory_events = 500\n'));
    expect(sql.enabled).toBe(true);
    expect(sql.settings).toEqual({ enabled: 'true', path: '/var/lib/orchestrator/state.db', memory_events: '500' });
    expect(sql.ini).toBe('[sql]\n; a comment\nenabled = true\nmemory_events = 500\n\npath = /tmp/lab/state.db\n');
  });

  it('reads enabled as the daemon does, and without a [sql] section the store is memory', () => {
    expect(siteSql('/x', config('[sql]\nenabled = no\n; path = /var/lib/orchestrator/state.db\n')).enabled).toBe(false);
    expect(siteSql('/x', config('[sql]\nenabled = on\n')).enabled).toBe(true);
    expect(siteSql('/x', config(''))).toEqual({ ini: '[sql]\npath = /x\n', enabled: false, settings: {} });
  });

  it('reads the repository\'s config/orchestrator.ini', () => {
    expect(siteSql('/x').ini).toMatch(/^\[sql\]\n[\s\S]*\npath = \/x\n$/);
  });
});
