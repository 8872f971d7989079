package org.peerns.app.model

/**
 * Which of the peer's video tracks a 1:1 call's one picture shows: its `screen` while it shares
 * its screen, else its camera, the first other video track seen (a PeerNS peer's `video`; a
 * browser's tracks have random IDs and it never says it shares a screen). Not thread-safe.
 */
class RemotePicture {
    private var sharing = false
    private var camera: String? = null

    /** The track shown now (null: no camera seen yet, nothing shared). */
    val shown: String? get() = if (sharing) SCREEN else camera

    /** Whether [track]'s frames are drawn; the first camera track seen is taken as the camera. */
    fun shows(track: String): Boolean {
        if (sharing) return track == SCREEN
        if (track == SCREEN) return false
        if (camera == null) camera = track
        return track == camera
    }

    /** The peer shares its screen, or no longer; returns the track no longer shown, if it changed. */
    fun screenShared(shared: Boolean): String? {
        if (shared == sharing) return null
        val before = shown
        sharing = shared
        return before
    }

    /** Forgets the camera seen (the media stopped); a shared screen stays shown. */
    fun clear() {
        camera = null
    }

    companion object {
        /** The track a PeerNS peer shares its screen on. */
        const val SCREEN = "screen"
    }
}
