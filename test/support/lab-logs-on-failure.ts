import { beforeEach } from 'vitest';
import { liveLabLogTails } from '../lab/live-labs.js';

// A failed end-to-end test prints the tail of its running labs' logs: the lab's folder
// goes with the lab, and CI keeps only what the run printed.
beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    const tails = liveLabLogTails();
    if (tails) console.error(`the lab's logs at the failure:\n${tails}`);
  });
});
