// Who in this process watches which folder. A change committed here is announced at once; one
// committed by another process arrives through the folder NOTIFY channel (mailboxes/changes.ts).
// Watchers re-read what changed themselves, so an announcement heard twice costs one cheap query.
export type FolderWatcher = () => void;

export class FolderHub {
  readonly #watchers = new Map<string, Set<FolderWatcher>>();

  /** Calls `watcher` whenever the folder changes; returns the function that stops it. */
  watch(folderId: string, watcher: FolderWatcher): () => void {
    let set = this.#watchers.get(folderId);
    if (!set) {
      set = new Set();
      this.#watchers.set(folderId, set);
    }
    set.add(watcher);
    return () => {
      set.delete(watcher);
      if (set.size === 0 && this.#watchers.get(folderId) === set) this.#watchers.delete(folderId);
    };
  }

  announce(folderIds: Iterable<string>): void {
    for (const id of new Set(folderIds)) {
      for (const watcher of this.#watchers.get(id) ?? []) watcher();
    }
  }

  /** After a lost LISTEN connection: every watcher looks again, as changes may have been missed. */
  announceAll(): void {
    this.announce([...this.#watchers.keys()]);
  }
}
