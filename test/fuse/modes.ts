/** Both reader modes: mount tests run once per mode (describe.each). */
export const READER_MODES = ['pool', 'worker'] as const;
