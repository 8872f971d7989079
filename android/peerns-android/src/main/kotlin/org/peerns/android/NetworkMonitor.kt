package org.peerns.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import android.net.NetworkCapabilities
import org.peerns.ffi.NetworkKind

/**
 * Follows the default network (ConnectivityManager) and calls [onChange] on each change of it,
 * with [NetworkKind.NONE] when there is none, a path id (network, interface, addresses) and
 * whether it is metered (no `NET_CAPABILITY_NOT_METERED`: mobile data, a hotspot, a Wi-Fi the
 * user marked metered): feed them to `PeernsNode.networkChanged`, which keeps the signaling
 * socket while the path id stays the same, and holds Wi-Fi-only backups while it is metered.
 * The first call reports the current network right after creation. Calls come one at a time on
 * a system thread. [close] unregisters.
 */
class NetworkMonitor(context: Context, private val onChange: (kind: NetworkKind, pathId: String, metered: Boolean) -> Unit) :
    AutoCloseable {
    private val manager = context.getSystemService(ConnectivityManager::class.java)

    /** A reported network and what was said of it. */
    private data class Path(val network: Network, val kind: NetworkKind, val id: String, val metered: Boolean)

    /** The last reported path; touched on the callback thread only. */
    private var current: Path? = null

    private val callback = object : ConnectivityManager.NetworkCallback() {
        // Always called right after onAvailable (API 26+), and whenever capabilities change
        // (the user marking the Wi-Fi metered, too).
        override fun onCapabilitiesChanged(network: Network, capabilities: NetworkCapabilities) {
            val metered = !capabilities.hasCapability(NetworkCapabilities.NET_CAPABILITY_NOT_METERED)
            report(Path(network, kindOf(capabilities), pathId(network, manager.getLinkProperties(network)), metered))
        }

        // A new address on the same network (e.g. DHCP renewal to another lease) is a new path.
        override fun onLinkPropertiesChanged(network: Network, properties: LinkProperties) {
            val now = current ?: return
            if (now.network == network) report(now.copy(id = pathId(network, properties)))
        }

        override fun onLost(network: Network) {
            if (current?.network == network) report(null)
        }
    }

    init {
        manager.registerDefaultNetworkCallback(callback)
    }

    /** Reports a switch of network, kind, path or meteredness, not every capability update. */
    private fun report(now: Path?) {
        if (now == current) return
        current = now
        onChange(now?.kind ?: NetworkKind.NONE, now?.id ?: "", now?.metered ?: false)
    }

    private fun pathId(network: Network, properties: LinkProperties?): String {
        val addresses = properties?.linkAddresses.orEmpty().map { it.address.hostAddress }.sorted()
        return "$network:${properties?.interfaceName.orEmpty()}:${addresses.joinToString(",")}"
    }

    override fun close() = manager.unregisterNetworkCallback(callback)

    private fun kindOf(c: NetworkCapabilities): NetworkKind = when {
        c.hasTransport(NetworkCapabilities.TRANSPORT_WIFI) -> NetworkKind.WIFI
        c.hasTransport(NetworkCapabilities.TRANSPORT_CELLULAR) -> NetworkKind.CELLULAR
        c.hasTransport(NetworkCapabilities.TRANSPORT_ETHERNET) -> NetworkKind.ETHERNET
        else -> NetworkKind.OTHER
    }
}
