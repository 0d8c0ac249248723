import { getPriority } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** The query thread's CPU priority: lowered for that thread alone, the process's other threads untouched. */
describe('lowerThisThread', () => {
  const linux = process.platform === 'linux';

  (linux ? test : test.skip)('lowers the calling thread only', async () => {
    const script = join(__dirname, '..', '..', 'dist', 'store', 'thread-priority.js');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { readlinkSync } = require('node:fs');
      const { getPriority } = require('node:os');
      const { lowerThisThread } = require(${JSON.stringify(script)});
      const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
      const took = lowerThisThread(12);
      parentPort.postMessage({ took, tid, nice: getPriority(tid) });
    `;
    const before = getPriority(process.pid);
    const worker = new Worker(code, { eval: true });
    const seen = await new Promise<{ took: boolean; tid: number; nice: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(seen.took).toBe(true);
    expect(seen.tid).not.toBe(process.pid);
    expect(seen.nice).toBe(Math.max(before, 12));
    expect(getPriority(process.pid)).toBe(before);
  });
});
