package org.peerns.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.LinkProperties
import android.net.Network
import android.net.NetworkCapabilities
import org.peerns.ffi.NetworkKind

/**
 * Follows the default network (ConnectivityManager) and calls [onChange] on each change of it,
 * with [NetworkKind.NONE] when there is none, and a path id (network, interface, addresses):
 * feed both to `PeernsNode.networkChanged`, which keeps the signaling socket while the path id
 * stays the same. The first call reports the current network right after creation. Calls come
 * one at a time on a system thread. [close] unregisters.
 */
class NetworkMonitor(
    context: Context,
    private val onChange: (NetworkKind, String) -> Unit,
) : AutoCloseable {
    private val manager = context.getSystemService(ConnectivityManager::class.java)

    /** The last reported network, kind and path id; touched on the callback thread only. */
    private var current: Triple<Network, NetworkKind, String>? = null

    private val callback = object : ConnectivityManager.NetworkCallback() {
        // Always called right after onAvailable (API 26+), and whenever capabilities change.
        override fun onCapabilitiesChanged(network: Network, capabilities: NetworkCapabilities) {
            report(Triple(network, kindOf(capabilities), pathId(network, manager.getLinkProperties(network))))
        }

        // A new address on the same network (e.g. DHCP renewal to another lease) is a new path.
        override fun onLinkPropertiesChanged(network: Network, properties: LinkProperties) {
            val now = current ?: return
            if (now.first == network) report(Triple(network, now.second, pathId(network, properties)))
        }

        override fun onLost(network: Network) {
            if (current?.first == network) report(null)
        }
    }

    init {
        manager.registerDefaultNetworkCallback(callback)
    }

    /** Reports a switch of network, kind or path, not every capability update. */
    private fun report(now: Triple<Network, NetworkKind, String>?) {
        if (now == current) return
        current = now
        onChange(now?.second ?: NetworkKind.NONE, now?.third ?: "")
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
