package org.peerns.app

import java.io.File
import javax.xml.parsers.DocumentBuilderFactory
import kotlin.test.assertEquals
import kotlin.test.assertFalse
import kotlin.test.assertTrue
import org.junit.Test
import org.w3c.dom.Element

/**
 * The manifests (the app's and the library's, as the Gradle build merges them) declare what the
 * features use and nothing more: a store review rejects unused declarations. Reads the source
 * files (the working directory is the repository, as android/check.sh runs it).
 */
class ManifestTest {
    private val android = "http://schemas.android.com/apk/res/android"

    private fun elements(path: String, tag: String): List<Element> {
        val factory = DocumentBuilderFactory.newInstance().apply { isNamespaceAware = true }
        val nodes = factory.newDocumentBuilder().parse(File(path)).getElementsByTagName(tag)
        return (0 until nodes.length).map { nodes.item(it) as Element }
    }

    private val permissions = listOf("android/peerns-android/src/main/AndroidManifest.xml", "android/app/src/main/AndroidManifest.xml")
        .flatMap { elements(it, "uses-permission") }
        .map { it.getAttributeNS(android, "name").removePrefix("android.permission.") }
        .toSet()

    private val serviceTypes = elements("android/app/src/main/AndroidManifest.xml", "service")
        .single()
        .getAttributeNS(android, "foregroundServiceType")
        .split('|')
        .toSet()

    @Test
    fun eachForegroundTypeHasItsPermissionAndNoneIsUnused() {
        assertEquals(setOf("dataSync", "location", "camera", "microphone", "mediaProjection"), serviceTypes)
        val typeOf = mapOf(
            "FOREGROUND_SERVICE_DATA_SYNC" to "dataSync",
            "FOREGROUND_SERVICE_LOCATION" to "location",
            "FOREGROUND_SERVICE_CAMERA" to "camera",
            "FOREGROUND_SERVICE_MICROPHONE" to "microphone",
            "FOREGROUND_SERVICE_MEDIA_PROJECTION" to "mediaProjection",
            "FOREGROUND_SERVICE_SPECIAL_USE" to "specialUse",
            "FOREGROUND_SERVICE_CONNECTED_DEVICE" to "connectedDevice",
        )
        for ((permission, type) in typeOf) {
            assertEquals(type in serviceTypes, permission in permissions, permission)
        }
    }

    @Test
    fun theTelecomConnectionServiceIsBoundOnlyByTheSystem() {
        val service = elements("android/peerns-android/src/main/AndroidManifest.xml", "service")
            .single { it.getAttributeNS(android, "name") == "org.peerns.android.PeernsConnectionService" }
        assertEquals("android.permission.BIND_TELECOM_CONNECTION_SERVICE", service.getAttributeNS(android, "permission"))
        val actions = service.getElementsByTagName("action")
        assertEquals(
            listOf("android.telecom.ConnectionService"),
            (0 until actions.length).map { (actions.item(it) as Element).getAttributeNS(android, "name") },
        )
        assertTrue("MANAGE_OWN_CALLS" in permissions)
    }

    @Test
    fun callAudioMayBeRouted() {
        // CallAudioRouter sets the audio mode, the speakerphone and Bluetooth SCO: ignored without it.
        assertTrue("MODIFY_AUDIO_SETTINGS" in permissions)
    }

    @Test
    fun theBootReceiverHearsRestartsAndUpdates() {
        val receiver = elements("android/app/src/main/AndroidManifest.xml", "receiver")
            .single { it.getAttributeNS(android, "name") == ".BootReceiver" }
        assertEquals("false", receiver.getAttributeNS(android, "enabled"))
        val actions = receiver.getElementsByTagName("action")
        assertEquals(
            setOf("android.intent.action.BOOT_COMPLETED", "android.intent.action.MY_PACKAGE_REPLACED"),
            (0 until actions.length).map { (actions.item(it) as Element).getAttributeNS(android, "name") }.toSet(),
        )
    }

    @Test
    fun eachRuntimePermissionGoesWithTheForegroundTypeOfItsFeature() {
        // Calls and the baby monitor capture in the service with the camera / microphone types.
        assertEquals("camera" in serviceTypes, "CAMERA" in permissions)
        assertEquals("microphone" in serviceTypes, "RECORD_AUDIO" in permissions)
        // Location only for stadium mode, which runs in the service with the location type.
        assertEquals("location" in serviceTypes, "ACCESS_FINE_LOCATION" in permissions)
        assertEquals("location" in serviceTypes, "ACCESS_COARSE_LOCATION" in permissions)
        assertFalse("ACCESS_BACKGROUND_LOCATION" in permissions)
    }
}
