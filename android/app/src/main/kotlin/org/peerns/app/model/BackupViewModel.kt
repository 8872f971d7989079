package org.peerns.app.model

import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.flow.updateAndGet
import kotlinx.coroutines.selects.select
import org.peerns.ffi.BackupListener
import org.peerns.ffi.Contact
import org.peerns.ffi.PeernsNodeInterface
import org.peerns.ffi.RpcBackupProgress
import org.peerns.ffi.RpcBackupSummary

/** What the backup screen shows. */
data class BackupState(
    /** Contacts a backup may go to (the device must serve a folder and grant us writing there). */
    val contacts: List<Contact> = emptyList(),
    /** The folders to back up, as [BackupFolders] keeps them (paths, or the app's folder references). */
    val folders: List<String> = emptyList(),
    val running: Boolean = false,
    /** The folder being read for the backup now ([BackupFolders.prepare]), before it is sent. */
    val preparing: String? = null,
    /** The backup waits for battery saver to go off ([BackupViewModel.startNow] starts it anyway). */
    val waitingForSaver: Boolean = false,
    /**
     * The running backup was paused when battery saver came on; it goes on when saver goes off
     * ([BackupViewModel.startNow] continues it now).
     */
    val pausedForSaver: Boolean = false,
    /** The latest step of the running (or last) backup. */
    val progress: RpcBackupProgress? = null,
    /** What the last finished backup did. */
    val summary: RpcBackupSummary? = null,
    val error: String? = null,
)

/**
 * Backup of chosen folders into another device of ours, with progress. A backup started while
 * [powerSaver] is on waits until it is off (or [startNow]), as a Wi-Fi-only one waits out a
 * metered network; one running when it comes on is paused (its `rpcBackup` call cancelled, which
 * stops it in the core) and started again with the same arguments when it goes off (or
 * [startNow]): the core skips the files the peer has and resumes a partly sent one. Cancelling
 * the coroutine of [backup] stops it for good. Pure Kotlin.
 */
class BackupViewModel(
    private val node: PeernsNodeInterface,
    private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF,
    private val store: BackupFolders = BackupFolders.InMemory(),
) {
    private val mutableState = MutableStateFlow(BackupState(folders = store.load()))
    val state: StateFlow<BackupState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.BACKUP)

    /** The user wants the waiting backup to start, or the paused one to continue, despite battery saver. */
    private val overridden = MutableStateFlow(false)

    /** Reports progress until [stop]: a cancelled `rpcBackup` may still deliver a late step. */
    private inner class Listener : BackupListener {
        @Volatile private var active = true

        override fun onBackupProgress(progress: RpcBackupProgress) {
            if (active) mutableState.update { it.copy(progress = progress) }
        }

        fun stop() {
            active = false
        }
    }

    suspend fun refresh() = guard {
        val contacts = node.contacts().sortedBy { it.name.lowercase() }
        mutableState.update { it.copy(contacts = contacts, error = null) }
    }

    /** Adds [folder] (as [BackupFolders] keeps it) to the backup; kept for the next time. */
    fun choose(folder: String) = keep { if (folder in it) it else it + folder }

    fun drop(folder: String) = keep { it - folder }

    /** The folders after [change], in the state and kept by [store]. */
    private fun keep(change: (List<String>) -> List<String>) =
        store.save(mutableState.updateAndGet { it.copy(folders = change(it.folders)) }.folders)

    /**
     * Backs the chosen folders up into [into] (e.g. `/incoming`) on contact [fingerprint];
     * returns when it is done. Files the device has already are skipped, interrupted ones resume.
     * Under battery saver it first waits ([BackupState.waitingForSaver]) until it is off or
     * [startNow]; battery saver coming on while it runs pauses it ([BackupState.pausedForSaver])
     * until it is off again or [startNow].
     */
    suspend fun backup(fingerprint: String, into: String = DEFAULT_INTO) = guard {
        val chosen = mutableState.value.folders
        if (chosen.isEmpty()) throw IllegalArgumentException("choose a folder first")
        if (mutableState.value.running) throw IllegalArgumentException("a backup is running")
        overridden.value = false
        mutableState.update { it.copy(running = true, progress = null, summary = null, error = null) }
        val prepared = mutableListOf<String>()
        try {
            // Each folder read as it is now (the app copies a picked folder's files out of their
            // provider), then sent; what was prepared goes once the backup ends.
            for (folder in chosen) {
                mutableState.update { it.copy(preparing = folder) }
                prepared += store.prepare(folder)
            }
            mutableState.update { it.copy(preparing = null) }
            var started = false
            while (true) {
                if (powerSaver.value && !overridden.value) awaitSaverOff(paused = started)
                started = true
                val summary = attempt(fingerprint, prepared, into) ?: continue
                mutableState.update { it.copy(summary = summary) }
                break
            }
        } finally {
            prepared.forEach(store::release)
            mutableState.update { it.copy(running = false, preparing = null, waitingForSaver = false, pausedForSaver = false) }
        }
    }

    /** Waits (before the backup or paused in it) until battery saver is off or [startNow]. */
    private suspend fun awaitSaverOff(paused: Boolean) {
        overridden.value = false
        mutableState.update { it.copy(waitingForSaver = !paused, pausedForSaver = paused) }
        combine(powerSaver, overridden) { saver, now -> !saver || now }.first { it }
        mutableState.update { it.copy(waitingForSaver = false, pausedForSaver = false) }
    }

    /** One `rpcBackup` call: its summary, or null when battery saver came on and stopped it. */
    private suspend fun attempt(fingerprint: String, folders: List<String>, into: String): RpcBackupSummary? = coroutineScope {
        val listener = Listener()
        val run = async { node.rpcBackup(fingerprint, folders, into, listener) }
        val pause = async { saverComesOn() }
        try {
            select {
                run.onAwait { it }
                pause.onAwait { null }
            }
        } finally {
            listener.stop()
            pause.cancel()
            run.cancel()
        }
    }

    /**
     * Returns when battery saver comes on; after [startNow] (the backup runs under saver) only
     * once it has gone off and comes on again.
     */
    private suspend fun saverComesOn() {
        if (overridden.value) powerSaver.first { !it }
        powerSaver.first { it }
    }

    /** Starts the backup that waits for battery saver, or continues the paused one, now. */
    fun startNow() {
        overridden.value = true
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** The folder the receiving device serves for backups, by convention. */
        const val DEFAULT_INTO = "/incoming"
    }
}

/**
 * Where the backup's chosen folders are kept between visits, and how one becomes a path the core
 * can read. The app keeps the folder references the system's picker gave (and the permission to
 * read them), and copies a folder's files out of their provider when a backup starts; on a
 * desktop or in tests a folder is a path already.
 */
interface BackupFolders {
    /** The folders chosen before, in order. */
    fun load(): List<String>

    /** Keeps [folders] for the next visit. */
    fun save(folders: List<String>)

    /** A path holding [folder]'s files as they are now (may take long: runs before the backup). */
    suspend fun prepare(folder: String): String = folder

    /** The backup that used [path] (from [prepare]) has ended. */
    fun release(path: String) = Unit

    /** Folders that are paths, kept in memory. */
    class InMemory : BackupFolders {
        private var kept = emptyList<String>()

        override fun load() = kept

        override fun save(folders: List<String>) {
            kept = folders
        }
    }
}
