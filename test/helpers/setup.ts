import { removeTemporaries } from './cleanup';
import { deleteTestTopics } from './kafka';

// Every test file: its topics, groups and temporary files go once its tests are done.
afterAll(async () => {
  await deleteTestTopics();
  removeTemporaries();
}, 30_000);
