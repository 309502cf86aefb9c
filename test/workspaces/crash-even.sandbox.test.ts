/** Crash injection for workspaces, the even kill points (test/workspaces/crash-points.ts). */
import { crashSuite } from './crash-points.js';

crashSuite(2);
