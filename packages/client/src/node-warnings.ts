/**
 * grpc-js passes an IP address as the TLS server name when a coordinator is addressed by IP,
 * and Node then prints a deprecation warning (DEP0123) to stderr. The certificate is still
 * checked against the IP address, so the warning tells a user nothing: programs that print to
 * a person (the CLI, the worker) call this once to leave that one warning out. Every other
 * warning is printed as Node prints it.
 */
export function hideTlsServerNameIpWarning(): void {
  const defaults = process.listeners('warning');
  if (defaults.length === 0) return;
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string }) => {
    if (warning.code === 'DEP0123') return;
    for (const listener of defaults) listener(warning);
  });
}
