import { InvalidInputError } from '../errors.js';

/**
 * libcni's ValidateContainerID and ValidateInterfaceName. Both values name cache files and reach
 * plugins, so the engine checks them before any plugin runs or any file is named after them.
 */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** IFNAMSIZ - 1: the kernel's limit for a link name. */
export const MAX_IFNAME_LENGTH = 15;

export function validateContainerId(id: string): void {
  if (id === '') throw new InvalidInputError('container id', id, 'missing', 'pass a container id');
  if (!CONTAINER_ID.test(id)) {
    throw new InvalidInputError('container id', id, 'may hold only letters, digits, "_", "." and "-", starting with a letter or digit', 'pass an id such as a Docker container id');
  }
}

export function validateIfName(name: string): void {
  const fix = 'pass a link name such as eth0 or net1';
  if (name === '') throw new InvalidInputError('interface name', name, 'missing', fix);
  if (name.length > MAX_IFNAME_LENGTH) throw new InvalidInputError('interface name', name, `longer than ${MAX_IFNAME_LENGTH} characters`, fix);
  if (name === '.' || name === '..') throw new InvalidInputError('interface name', name, 'not a link name', fix);
  if (/[/:\s]/u.test(name)) throw new InvalidInputError('interface name', name, 'holds "/", ":" or whitespace', fix);
}
