// Integration tests see the stack's credentials exactly as a worker does: in its environment.
import { stackSecrets } from './stack';

Object.assign(process.env, stackSecrets());
