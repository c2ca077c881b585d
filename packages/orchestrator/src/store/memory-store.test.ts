import { describeStore } from './store.contract.js';
import { MemoryStore } from './memory-store.js';

describeStore('MemoryStore', () => new MemoryStore({ prefix: 'fd00:3::/64' }));
