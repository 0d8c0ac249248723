// Runs once in Jest's own process, where the files run too (maxWorkers 1).
// kafkajs arms its request queue's timer with a negative delay; Node 24
// prints a TimeoutNegativeWarning each time (bin/action-router.js drops the
// same one). Every other warning is printed as Node prints it.
module.exports = async () => {
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.stack ?? warning.message}\n`);
  });
};
