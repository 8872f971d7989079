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
    /** The folders (paths) to back up. */
    val folders: List<String> = emptyList(),
    val running: Boolean = false,
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
class BackupViewModel(private val node: PeernsNodeInterface, private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF) {
    private val mutableState = MutableStateFlow(BackupState())
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

    /** Adds [path] (a folder or file) to the backup. */
    fun choose(path: String) = mutableState.update { if (path in it.folders) it else it.copy(folders = it.folders + path) }

    fun drop(path: String) = mutableState.update { it.copy(folders = it.folders - path) }

    /**
     * Backs the chosen folders up into [into] (e.g. `/incoming`) on contact [fingerprint];
     * returns when it is done. Files the device has already are skipped, interrupted ones resume.
     * Under battery saver it first waits ([BackupState.waitingForSaver]) until it is off or
     * [startNow]; battery saver coming on while it runs pauses it ([BackupState.pausedForSaver])
     * until it is off again or [startNow].
     */
    suspend fun backup(fingerprint: String, into: String = DEFAULT_INTO) = guard {
        val folders = mutableState.value.folders
        if (folders.isEmpty()) throw IllegalArgumentException("choose a folder first")
        if (mutableState.value.running) throw IllegalArgumentException("a backup is running")
        overridden.value = false
        mutableState.update { it.copy(running = true, progress = null, summary = null, error = null) }
        try {
            var started = false
            while (true) {
                if (powerSaver.value && !overridden.value) awaitSaverOff(paused = started)
                started = true
                val summary = attempt(fingerprint, folders, into) ?: continue
                mutableState.update { it.copy(summary = summary) }
                break
            }
        } finally {
            mutableState.update { it.copy(running = false, waitingForSaver = false, pausedForSaver = false) }
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
