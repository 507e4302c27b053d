// Filesystem helpers shared by the domain modules.
import { copyFile, link, mkdir, readdir, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/**
 * Mirrors the tree `src` at `dest` with hard links, so a model already on disk (the download or
 * the model cache) is not copied a second time into a build context. A file that cannot be linked
 * (another filesystem, a filesystem without links) is copied instead, and so is a symlink's target.
 * Returns how many files were linked and how many copied.
 */
export async function linkTree(src: string, dest: string): Promise<{ linked: number; copied: number }> {
  const count = { linked: 0, copied: 0 }
  await mkdir(dest, { recursive: true })
  for (const entry of await readdir(src, { withFileTypes: true })) {
    const from = join(src, entry.name)
    const to = join(dest, entry.name)
    if (entry.isDirectory()) {
      const sub = await linkTree(from, to)
      count.linked += sub.linked
      count.copied += sub.copied
    } else if (entry.isSymbolicLink()) {
      await copyFile(from, to)
      count.copied++
    } else if (entry.isFile()) {
      try {
        await link(from, to)
        count.linked++
      } catch (err) {
        if (!isUnlinkable(err)) throw err
        await copyFile(from, to)
        count.copied++
      }
    }
  }
  return count
}

// EXDEV: another filesystem; EPERM/ENOTSUP/EMLINK: links refused or exhausted there.
function isUnlinkable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EMLINK' || code === 'EOPNOTSUPP'
}

/** Puts the directory `from` at `to`, replacing what was there (a rename: atomic on one filesystem). */
export async function moveDirectory(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true })
  await rm(to, { recursive: true, force: true })
  await rename(from, to)
}
