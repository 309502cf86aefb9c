/** Crash injection for workspaces, the odd kill points (test/workspaces/crash-points.ts). */
import { crashSuite } from './crash-points.js';

crashSuite(1);
