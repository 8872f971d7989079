package org.peerns.app.model

import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.update
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
    /** The latest step of the running (or last) backup. */
    val progress: RpcBackupProgress? = null,
    /** What the last finished backup did. */
    val summary: RpcBackupSummary? = null,
    val error: String? = null,
)

/**
 * Backup of chosen folders into another device of ours, with progress. A backup started while
 * [powerSaver] is on waits until it is off (or [startNow]), as a Wi-Fi-only one waits out a
 * metered network; one already running goes on (the core pauses a backup only for a metered
 * network). Pure Kotlin.
 */
class BackupViewModel(private val node: PeernsNodeInterface, private val powerSaver: StateFlow<Boolean> = BatterySaver.OFF) {
    private val mutableState = MutableStateFlow(BackupState())
    val state: StateFlow<BackupState> = mutableState.asStateFlow()

    /** The screen's battery saver notice, null while it is off. */
    val notice: Flow<String?> = BatterySaver.notice(powerSaver, BatterySaver.BACKUP)

    /** The user wants the waiting backup to start despite battery saver. */
    private val overridden = MutableStateFlow(false)

    private val listener = object : BackupListener {
        override fun onBackupProgress(progress: RpcBackupProgress) = mutableState.update { it.copy(progress = progress) }
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
     * Under battery saver it first waits ([BackupState.waitingForSaver]) until it is off or [startNow].
     */
    suspend fun backup(fingerprint: String, into: String = DEFAULT_INTO) = guard {
        val folders = mutableState.value.folders
        if (folders.isEmpty()) throw IllegalArgumentException("choose a folder first")
        if (mutableState.value.running) throw IllegalArgumentException("a backup is running")
        overridden.value = false
        mutableState.update { it.copy(running = true, progress = null, summary = null, error = null) }
        try {
            if (powerSaver.value) {
                mutableState.update { it.copy(waitingForSaver = true) }
                combine(powerSaver, overridden) { saver, now -> !saver || now }.first { it }
                mutableState.update { it.copy(waitingForSaver = false) }
            }
            val summary = node.rpcBackup(fingerprint, folders, into, listener)
            mutableState.update { it.copy(summary = summary) }
        } finally {
            mutableState.update { it.copy(running = false, waitingForSaver = false) }
        }
    }

    /** Starts the backup that waits for battery saver now. */
    fun startNow() {
        overridden.value = true
    }

    private suspend fun guard(block: suspend () -> Unit) = mutableState.guard({ copy(error = it) }, block)

    companion object {
        /** The folder the receiving device serves for backups, by convention. */
        const val DEFAULT_INTO = "/incoming"
    }
}
